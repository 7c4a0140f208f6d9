"""Several machines in one scenario, on private links, with faults.

Each machine is a QEMU process that boots the kernel under test with the
harness's initramfs (``harness.initramfs``: a root in RAM, so a machine under
memory pressure never pages its tools back in over 9p) and runs its role's
script.  The host talks to a machine only through virtio-serial ports:

* ``kexp.out``: the script's output, read line by line and stamped with the
  host's monotonic clock (``<machine>/out.txt``),
* ``kexp.hb`` (optional): a heartbeat the machine writes every 100 ms,
  recorded the same way (``<machine>/heartbeat.txt``); the host decides
  liveness from it, independently of the network and of the machine's own
  opinion,
* the kernel console on ttyS0 goes to ``<machine>/console.log``.

Links are QEMU ``-netdev dgram`` unix sockets through the harness's switch
(``harness.netswitch``): no IP traffic on the host.  Faults: ``freeze`` and
``thaw`` stop and continue a machine's QEMU (SIGSTOP/SIGCONT: the whole
machine stops as if unreachable); ``link`` breaks, slows or makes a link
lossy at the switch.  Every fault is an event in ``events.json`` with the
host time.  Every process the fleet starts is stopped on any exit (the
context manager, ``vm.kill_all`` at exit, Ctrl-C), by PID.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import initramfs, vm
from .errors import BootError, GuestTimeout
from .printer import log


@dataclass
class MachineSpec:
    name: str
    memory: str = "256M"
    cpus: int = 1
    script: str = ""  # run by /init, output to kexp.out
    disks: list[str] = field(default_factory=list)  # host files -> /dev/vda, /dev/vdb, ...
    append: list[str] = field(default_factory=list)
    heartbeat: bool = False
    virtfs: dict[str, str] = field(default_factory=dict)  # 9p tag -> host dir (read-only)


@dataclass
class LinkSpec:
    name: str
    members: dict[str, str]  # machine -> "10.99.0.1/24" (address inside the guests)


def qarg(path) -> str:
    """A path inside a QEMU option value: a comma is written twice."""
    return str(path).replace(",", ",,")


class Reader(threading.Thread):
    """Reads a chardev unix socket line by line; stamps each with host time."""

    def __init__(self, path: str, out: Path, t0: float):
        super().__init__(daemon=True)
        self.path, self.out, self.t0 = path, out, t0
        self.lines: list[tuple[float, str]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        s = None
        while not self.stop.is_set():
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(self.path)
                break
            except OSError:
                s.close()
                s = None
                time.sleep(0.05)
        if s is None:
            return
        s.settimeout(0.5)
        buf = b""
        with open(self.out, "a") as f:
            while not self.stop.is_set():
                try:
                    d = s.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    break
                if not d:
                    break
                buf += d
                t = time.monotonic() - self.t0
                while b"\n" in buf:
                    ln, buf = buf.split(b"\n", 1)
                    txt = ln.decode(errors="replace").rstrip("\r")
                    self.lines.append((t, txt))
                    f.write(f"{t:.3f}\t{txt}\n")
                f.flush()
        s.close()


class Machine:
    def __init__(self, spec: MachineSpec, fleet: Fleet):
        self.spec, self.fleet = spec, fleet
        self.dir = fleet.rundir / spec.name
        self.proc: subprocess.Popen | None = None
        self.readers: dict[str, Reader] = {}
        self.frozen = False
        self.stopped = False

    def argv(self, image: Path, nics: list[tuple[str, str, str]]) -> list[str]:
        s, sd = self.spec, self.fleet.sockdir
        argv = ["qemu-system-x86_64", "-name", s.name, "-m", s.memory, "-smp", str(s.cpus),
                "-nodefaults", "-nographic", "-no-reboot", "-kernel", self.fleet.kernel_image,
                "-initrd", qarg(image), "-serial", f"file:{qarg(self.dir / 'console.log')}",
                "-device", "virtio-serial-pci,id=kser",
                "-chardev", f"socket,id=kout,path={sd}/{s.name}.out,server=on,wait=off",
                "-device", "virtserialport,bus=kser.0,chardev=kout,name=kexp.out"]
        if self.fleet.accel == "kvm":
            argv += ["-accel", "kvm", "-cpu", "host"]
        else:
            argv += ["-accel", "tcg,thread=multi,tb-size=128"]
        if s.heartbeat:
            argv += ["-chardev", f"socket,id=khb,path={sd}/{s.name}.hb,server=on,wait=off",
                     "-device", "virtserialport,bus=kser.0,chardev=khb,name=kexp.hb"]
        for tag, path in s.virtfs.items():
            argv += ["-virtfs", f"local,path={path},mount_tag={tag},security_model=none,"
                                "readonly=on,multidevs=remap"]
        for i, d in enumerate(s.disks):
            argv += ["-drive", f"file={qarg(d)},if=virtio,format=raw,index={i}"]
        for link, mac, _ in nics:
            argv += ["-netdev", f"dgram,id=n{link},local.type=unix,local.path={sd}/{link}."
                                f"{s.name}.vm,remote.type=unix,remote.path={sd}/{link}.{s.name}.sw",
                     "-device", f"virtio-net-pci,netdev=n{link},mac={mac}"]
        nets = " ".join(f"{mac}={addr}" for _, mac, addr in nics)
        append = ["console=ttyS0", "loglevel=5", "panic=-1", f"kexp.machine={s.name}",
                  f"kexp.nics={nets}".replace(" ", ","), *s.append]
        return [*argv, "-append", " ".join(append)]

    def launch(self, nics: list[tuple[str, str, str]]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        img = initramfs.machine_image(self.fleet.base, {
            "/etc/kexp/run.sh": (self.spec.script.encode(), 0o755)}, self.dir / "initrd.img")
        argv = self.argv(img, nics)
        (self.dir / "argv.txt").write_text(" ".join(argv) + "\n")
        (self.dir / "console.log").write_text("")
        self.t_launch = time.monotonic()
        self.stderr = open(self.dir / "qemu-stderr.txt", "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.stderr,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        vm._track(self.proc)
        self.fleet.event(f"launch {self.spec.name}", pid=self.proc.pid)
        ports = ["out"] + (["hb"] if self.spec.heartbeat else [])
        for p in ports:
            r = Reader(f"{self.fleet.sockdir}/{self.spec.name}.{p}",
                       self.dir / ("out.txt" if p == "out" else "heartbeat.txt"), self.fleet.t0)
            r.start()
            self.readers[p] = r

    def lines(self, port: str = "out") -> list[tuple[float, str]]:
        r = self.readers.get(port)
        return list(r.lines) if r else []

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_for(self, text: str, timeout: float, port: str = "out") -> float:
        """Wait for a line containing ``text``; its host time."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for t, ln in self.lines(port):
                if text in ln:
                    return t
            if not self.alive():
                raise BootError(f"{self.spec.name}: QEMU exited (rc={self.proc.returncode}) "
                                f"before {text!r}; see {self.dir}/console.log")
            time.sleep(0.1)
        raise GuestTimeout(f"{self.spec.name}: no {text!r} within {timeout:.0f}s")

    def signal(self, sig: int) -> None:
        if self.alive():
            os.kill(self.proc.pid, sig)  # our own QEMU, by PID

    def stop(self, grace: float = 0.0) -> None:
        if self.proc is None or self.stopped:
            return
        self.stopped = True
        if self.frozen:
            self.signal(signal.SIGCONT)
            self.frozen = False
        if grace and self.alive():
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        vm._killgroup(self.proc)
        self.fleet.event(f"stopped {self.spec.name}", rc=self.proc.returncode)
        for r in self.readers.values():
            r.stop.set()
        for r in self.readers.values():
            r.join(timeout=2)
        self.stderr.close()


class Fleet:
    """Machines and links of one scenario run (a context manager)."""

    def __init__(self, rundir: Path, kernel_image: str, machines: list[MachineSpec],
                 links: list[LinkSpec], accel: str = "tcg", mbit: float = 0.0):
        self.rundir = rundir
        self.kernel_image = kernel_image
        self.accel = accel
        self.links = links
        self.mbit = mbit
        self.machines = {m.name: Machine(m, self) for m in machines}
        self.events: list[dict] = []
        self.t0 = time.monotonic()
        self.switch: subprocess.Popen | None = None
        self.sockdir = ""
        for ln in links:
            for m in ln.members:
                if m not in self.machines:
                    raise BootError(f"link {ln.name}: unknown machine {m}")

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def now(self) -> float:
        return time.monotonic() - self.t0

    def event(self, what: str, **kw) -> None:
        self.events.append({"t": round(self.now(), 3), "event": what, **kw})
        log("fleet", f"t={self.now():7.1f}s {what}")
        (self.rundir / "events.json").write_text(json.dumps(self.events, indent=1))

    def nics(self, name: str) -> list[tuple[str, str, str]]:
        out = []
        for li, ln in enumerate(self.links):
            if name in ln.members:
                mi = list(ln.members).index(name)
                out.append((ln.name, f"52:54:00:99:{li:02x}:{mi + 1:02x}", ln.members[name]))
        return out

    def start(self, order: list[str] | None = None) -> None:
        """Start the switch and every machine (all boot concurrently)."""
        self.start_switch()
        self.launch(order)

    def start_switch(self) -> None:
        """The links, before any machine: faults set now apply from the first frame."""
        self.rundir.mkdir(parents=True, exist_ok=True)
        self.base = initramfs.base_image()
        # unix socket paths are limited to 108 bytes: a short directory
        self.sockdir = tempfile.mkdtemp(prefix="kexp-net-", dir="/tmp")
        spec = {"links": {ln.name: list(ln.members) for ln in self.links}, "mbit": self.mbit}
        (self.rundir / "links.json").write_text(json.dumps(
            {ln.name: ln.members for ln in self.links}, indent=1))
        sf = Path(self.sockdir) / "switch.json"
        sf.write_text(json.dumps(spec))
        self.switch = subprocess.Popen(
            [sys.executable, "-m", "harness.netswitch", self.sockdir, str(sf),
             str(self.rundir / "links-stats.json")], start_new_session=True,
            cwd=str(Path(__file__).resolve().parent.parent),
            stdout=open(self.rundir / "switch.log", "wb"), stderr=subprocess.STDOUT)
        vm._track(self.switch)
        for _ in range(100):
            if (Path(self.sockdir) / "ctl").exists():
                break
            time.sleep(0.05)
        else:
            raise BootError("the link switch did not start: "
                            + (self.rundir / "switch.log").read_text(errors="replace")[-800:])
        self.event("switch up", pid=self.switch.pid)

    def launch(self, order: list[str] | None = None) -> None:
        log("fleet", f"{len(self.machines)} machines ({', '.join(self.machines)}), links "
                     + ", ".join(f"{ln.name}: {'-'.join(ln.members)}" for ln in self.links)
                     + (f", {self.mbit:g} Mbit/s per port" if self.mbit else "") + f", {self.accel.upper()}")
        for name in order or list(self.machines):
            self.machines[name].launch(self.nics(name))

    def freeze(self, name: str) -> None:
        m = self.machines[name]
        m.signal(signal.SIGSTOP)
        m.frozen = True
        self.event(f"freeze {name}")

    def thaw(self, name: str) -> None:
        m = self.machines[name]
        m.signal(signal.SIGCONT)
        m.frozen = False
        self.event(f"thaw {name}")

    def link(self, link: str, member: str, **state) -> None:
        """Fault a link at the switch: drop=1, delay_ms=N, loss=P (percent)."""
        msg = "set " + " ".join([link, member, *(f"{k}={v}" for k, v in state.items())])
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            s.sendto(msg.encode(), f"{self.sockdir}/ctl")
        finally:
            s.close()
        self.event(f"link {link} {member} " + " ".join(f"{k}={v}" for k, v in state.items()))

    def stop(self, order: list[str] | None = None, grace: dict[str, float] | None = None) -> None:
        """Stop machines in ``order`` (the rest after), then the switch."""
        for name in [*(order or []), *(n for n in self.machines if n not in (order or []))]:
            self.machines[name].stop((grace or {}).get(name, 0.0))
        if self.switch is not None:
            if self.switch.poll() is None:
                self.switch.send_signal(signal.SIGTERM)
                try:
                    self.switch.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
            vm._killgroup(self.switch)
            self.switch = None
        if self.sockdir:
            shutil.rmtree(self.sockdir, ignore_errors=True)
            self.sockdir = ""
