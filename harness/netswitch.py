"""The links between a scenario's machines: a learning switch on unix sockets.

Every NIC of a machine is a QEMU ``-netdev dgram`` on a unix socket whose
peer is a port of this process, so Ethernet frames never touch the host's
IP stack and cannot reach any address outside the machines.  A link with two
members is a point-to-point cable; with more it is a shared segment (one hub
with MAC learning).  Because every frame passes here, a link can be broken,
slowed or made lossy per member without the machines' cooperation::

    python -m harness.netswitch SOCKDIR SPEC.json STATS.json

SPEC: ``{"links": {"ac": ["A", "C"], ...}, "mbit": 40}``: every port sends
to its machine at most ``mbit`` Mbit/s (0: unlimited), queueing up to
``QUEUE`` frames and dropping the rest, as a switch port of that speed would
(frames wait there too while the machine's socket is full);
without it a flooding machine outruns what an emulated CPU can receive and
every frame to that machine is lost at the host's socket, not in the guest.  Sockets: the switch's side of
member M on link L is ``SOCKDIR/L.M.sw``, the machine's side ``SOCKDIR/L.M.vm``.
Control: datagrams to ``SOCKDIR/ctl``, ``set L M drop=0|1 delay_ms=N loss=P``
(affects frames to and from M on L).  Counters go to STATS.json every second
and at exit (SIGTERM).
"""

from __future__ import annotations

import collections
import heapq
import json
import os
import random
import selectors
import signal
import socket
import sys
import time

QUEUE = 512


class Port:
    def __init__(self, link: str, member: str, sockdir: str, mbit: float = 0.0):
        self.link, self.member = link, member
        self.path = os.path.join(sockdir, f"{link}.{member}.sw")
        self.peer = os.path.join(sockdir, f"{link}.{member}.vm")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        self.sock.bind(self.path)
        self.sock.setblocking(False)
        self.drop = False
        self.delay = 0.0
        self.loss = 0.0
        self.rate = mbit * 1e6 / 8  # bytes per second, 0 = unlimited
        self.tokens = 0.0
        self.last = time.monotonic()
        self.queue: collections.deque[bytes] = collections.deque()
        self.stats = {"rx_frames": 0, "rx_bytes": 0, "tx_frames": 0, "tx_bytes": 0,
                      "dropped_fault": 0, "dropped_peer": 0, "dropped_queue": 0}

    def enqueue(self, frame: bytes) -> None:
        if len(self.queue) < QUEUE:
            self.queue.append(frame)
            self.drain(time.monotonic())
        else:
            self.stats["dropped_queue"] += 1

    def drain(self, now: float) -> None:
        """Send what the port's speed allows; a frame the machine's socket
        cannot take yet (a unix datagram socket holds only
        net.unix.max_dgram_qlen of them) stays at the head of the queue."""
        if self.rate:
            self.tokens = min(self.tokens + (now - self.last) * self.rate, 64 * 1514)
        self.last = now
        while self.queue and (not self.rate or self.tokens >= len(self.queue[0])):
            if not self.send(self.queue[0]):
                break
            f = self.queue.popleft()
            if self.rate:
                self.tokens -= len(f)

    def send(self, frame: bytes) -> bool:
        """True if the frame was sent or is lost for good (no machine)."""
        try:
            self.sock.sendto(frame, self.peer)
            self.stats["tx_frames"] += 1
            self.stats["tx_bytes"] += len(frame)
            return True
        except BlockingIOError:  # the machine's socket is full: retry later
            return False
        except OSError:  # no machine there (not up yet, or stopped)
            self.stats["dropped_peer"] += 1
            return True


def main(argv: list[str]) -> int:
    sockdir, spec_file, stats_file = argv
    spec = json.loads(open(spec_file).read())
    ports: dict[tuple[str, str], Port] = {}
    for link, members in spec["links"].items():
        for m in members:
            ports[(link, m)] = Port(link, m, sockdir, float(spec.get("mbit", 0)))
    ctl = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ctl.bind(os.path.join(sockdir, "ctl"))
    ctl.setblocking(False)
    sel = selectors.DefaultSelector()
    for p in ports.values():
        sel.register(p.sock, selectors.EVENT_READ, p)
    sel.register(ctl, selectors.EVENT_READ, None)
    macs: dict[tuple[str, bytes], Port] = {}
    delayed: list[tuple[float, int, Port, bytes]] = []
    seq = 0
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    last_dump = 0.0

    def dump() -> None:
        tmp = stats_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump({f"{p.link}.{p.member}": {**p.stats, "drop": p.drop, "delay_ms":
                                                p.delay * 1000, "loss": p.loss}
                       for p in ports.values()}, f, indent=1)
        os.replace(tmp, stats_file)

    def forward(src: Port, frame: bytes) -> None:
        nonlocal seq
        if len(frame) < 14:
            return
        macs[(src.link, frame[6:12])] = src
        dst = macs.get((src.link, frame[0:6]))
        outs = [dst] if dst is not None and dst is not src else [
            p for p in ports.values() if p.link == src.link and p is not src]
        for o in outs:
            if o.drop or src.drop or (o.loss or src.loss) and random.random() * 100 < max(
                    o.loss, src.loss):
                o.stats["dropped_fault"] += 1
                continue
            d = max(o.delay, src.delay)
            if d:
                seq += 1
                heapq.heappush(delayed, (time.monotonic() + d, seq, o, frame))
            else:
                o.enqueue(frame)

    while not stop:
        now = time.monotonic()
        timeout = 0.5 if not delayed else max(0.0, min(0.5, delayed[0][0] - now))
        if any(p.queue for p in ports.values()):
            timeout = min(timeout, 0.002)
        for key, _ in sel.select(timeout):
            p = key.data
            if p is None:
                try:
                    msg = ctl.recv(4096).decode().split()
                except OSError:
                    continue
                if len(msg) >= 3 and msg[0] == "set" and (msg[1], msg[2]) in ports:
                    tgt = ports[(msg[1], msg[2])]
                    for kv in msg[3:]:
                        k, _, v = kv.partition("=")
                        if k == "drop":
                            tgt.drop = v == "1"
                        elif k == "delay_ms":
                            tgt.delay = float(v) / 1000
                        elif k == "loss":
                            tgt.loss = float(v)
                continue
            for _ in range(64):
                try:
                    frame = p.sock.recv(70000)
                except BlockingIOError:
                    break
                except OSError:
                    break
                p.stats["rx_frames"] += 1
                p.stats["rx_bytes"] += len(frame)
                forward(p, frame)
        now = time.monotonic()
        while delayed and delayed[0][0] <= now:
            _, _, o, frame = heapq.heappop(delayed)
            o.enqueue(frame)
        for p in ports.values():
            if p.queue:
                p.drain(now)
        if now - last_dump >= 1.0:
            dump()
            last_dump = now
    dump()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
