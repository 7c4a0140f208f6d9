"""A small root for the machines of multi-guest scenarios.

A machine that swaps over the network must not page its own tools back in
from the host over 9p: the root is an initramfs (it lives in RAM, unevictable)
built on demand from the host's binaries and cached:

* busybox (static) with every applet linked,
* nbd-client, nbd-server, ip and tc from the host with the shared libraries
  ``ldd`` names,
* the harness's guest tools for these scenarios, linked statically,
* ``/init``: mounts proc, sys, devtmpfs, cgroup2 and tmpfs, brings up the
  NICs named on the command line, runs ``/etc/kexp/run.sh`` and powers off.

A per-machine overlay (its script and parameters) is a second gzip'd cpio
archive appended to the cached one; the kernel unpacks both in turn.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import stat
import subprocess
from pathlib import Path

from .errors import BootError
from .paths import GUEST_SRC, cache_dir
from .printer import log

# host binaries copied with their libraries: name -> candidates
HOST_BINS = {
    "nbd-client": ("/usr/sbin/nbd-client", "/sbin/nbd-client"),
    "nbd-server": ("/usr/bin/nbd-server", "/usr/sbin/nbd-server"),
    "ip": ("/usr/sbin/ip", "/sbin/ip", "/bin/ip"),
    "tc": ("/usr/sbin/tc", "/sbin/tc"),
}
STATIC_TOOLS = ("netjob", "flood")
BUSYBOX = ("/usr/bin/busybox", "/bin/busybox")

INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/usr/sbin:/usr/bin:/bin:/sbin
mkdir -p /proc /sys /dev /run /tmp /sys/fs/cgroup
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs tmpfs /run
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
ip link set lo up
# kexp.nics=MAC=ADDR/LEN,...: the NIC with that MAC gets that address
for kv in $(tr ' ' '\n' < /proc/cmdline | sed -n 's/^kexp.nics=//p' | tr ',' ' '); do
  mac=${kv%%=*}; addr=${kv#*=}
  for n in /sys/class/net/*; do
    [ "$(cat $n/address)" = "$mac" ] || continue
    ip addr add "$addr" dev "${n##*/}" && ip link set "${n##*/}" up
  done
done
export KEXP_MACHINE=$(tr ' ' '\n' < /proc/cmdline | sed -n 's/^kexp.machine=//p')
hostname "$KEXP_MACHINE"
echo "<4>kexp: console capture check" > /dev/kmsg
# no udev: name the virtio-serial ports as udev would
mkdir -p /dev/virtio-ports
for _ in $(seq 50); do
  for p in /sys/class/virtio-ports/vport*; do
    [ -e "$p/name" ] && ln -sf "/dev/${p##*/}" "/dev/virtio-ports/$(cat "$p/name")"
  done
  [ -e /dev/virtio-ports/kexp.out ] && break; sleep 0.1
done
sleep 0.2  # ports of the same device probe together: name any that came late
for p in /sys/class/virtio-ports/vport*; do
  [ -e "$p/name" ] && ln -sf "/dev/${p##*/}" "/dev/virtio-ports/$(cat "$p/name")"
done
OUT=/dev/virtio-ports/kexp.out
[ -e $OUT ] || OUT=/dev/console
sh /etc/kexp/run.sh > $OUT 2>&1
echo "kexp-exit $?" > $OUT
sync
poweroff -f
"""


def _find(cands: tuple[str, ...]) -> str:
    for c in cands:
        if Path(c).is_file():
            return c
    raise BootError(f"{cands[0]} missing on the host (needed in the guests' initramfs; "
                    "scripts/install-deps installs it)")


def _libs(binary: str) -> list[str]:
    p = subprocess.run(["ldd", binary], capture_output=True, text=True)
    out = []
    for ln in p.stdout.splitlines():
        parts = ln.split()
        if "=>" in parts and len(parts) >= 3 and parts[2].startswith("/"):
            out.append(parts[2])
        elif parts and parts[0].startswith("/"):
            out.append(parts[0])  # the dynamic loader
    return out


class Cpio:
    """A newc cpio archive written in memory (no host cpio needed)."""

    def __init__(self) -> None:
        self.buf = io.BytesIO()
        self.ino = 1
        self.dirs: set[str] = set()

    def _entry(self, name: str, mode: int, data: bytes = b"") -> None:
        name = name.lstrip("/")
        hdr = "070701" + "".join(f"{v:08x}" for v in (
            self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name) + 1, 0))
        self.ino += 1
        self.buf.write(hdr.encode() + name.encode() + b"\0")
        self.buf.write(b"\0" * (-(110 + len(name) + 1) % 4))
        self.buf.write(data)
        self.buf.write(b"\0" * (-len(data) % 4))

    def mkdir(self, path: str) -> None:
        parts = path.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d and d not in self.dirs:
                self.dirs.add(d)
                self._entry(d, stat.S_IFDIR | 0o755)

    def file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        self.mkdir(os.path.dirname(path.strip("/")))
        self._entry(path, stat.S_IFREG | mode, data)

    def symlink(self, path: str, target: str) -> None:
        self.mkdir(os.path.dirname(path.strip("/")))
        self._entry(path, stat.S_IFLNK | 0o777, target.encode())

    def close(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        return self.buf.getvalue()


def _static_tools(d: Path) -> dict[str, Path]:
    out = {}
    for t in STATIC_TOOLS:
        src = GUEST_SRC / f"{t}.c"
        dst = d / t
        cmd = ["gcc", "-O2", "-Wall", "-static", "-I", str(GUEST_SRC), "-o", str(dst), str(src)]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode:
            raise BootError(f"cannot build {t} for the initramfs:\n{p.stderr[-2000:]}")
        out[t] = dst
    return out


def base_image() -> Path:
    """The cached base initramfs (gzip), rebuilt when its inputs change."""
    bins = {n: _find(c) for n, c in HOST_BINS.items()}
    bb = _find(BUSYBOX)
    h = hashlib.sha256(INIT.encode())
    for f in [bb, *bins.values(), *(str(GUEST_SRC / f"{t}.c") for t in STATIC_TOOLS),
              str(GUEST_SRC / "kexp_guest.h")]:
        st = os.stat(f)
        h.update(f"{f}:{st.st_size}:{int(st.st_mtime)}".encode())
        if f.startswith(str(GUEST_SRC)):
            h.update(Path(f).read_bytes())
    d = cache_dir() / "initramfs" / h.hexdigest()[:12]
    img = d / "base.cpio.gz"
    if img.is_file():
        return img
    d.mkdir(parents=True, exist_ok=True)
    c = Cpio()
    for sub in ("bin", "sbin", "usr/bin", "usr/sbin", "etc/kexp", "proc", "sys", "dev", "run",
                "tmp", "root", "var/run"):
        c.mkdir(sub)
    c.file("/bin/busybox", Path(bb).read_bytes(), 0o755)
    c.file("/init", INIT.encode(), 0o755)
    c.file("/etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n")
    c.file("/etc/group", b"root:x:0:\nnogroup:x:65534:\n")
    libs: set[str] = set()
    for name, path in bins.items():
        c.file(f"/usr/sbin/{name}", Path(path).read_bytes(), 0o755)
        libs.update(_libs(path))
    for lib in sorted(libs):
        real = os.path.realpath(lib)
        c.file(lib, Path(real).read_bytes(), 0o755)
        if lib.startswith("/lib/"):  # the loader is looked up under both
            c.symlink("/usr" + lib, lib)
    for name, path in _static_tools(d).items():
        c.file(f"/usr/bin/{name}", path.read_bytes(), 0o755)
    tmp = img.with_suffix(".tmp")
    with gzip.open(tmp, "wb", compresslevel=6) as f:
        f.write(c.close())
    tmp.rename(img)
    log("initramfs", f"built {img} ({img.stat().st_size // 1024} KiB): busybox, "
                     f"{', '.join(bins)}, {', '.join(STATIC_TOOLS)}")
    return img


def static_tool(name: str) -> Path:
    """The host path of a static guest tool of the cached image."""
    return base_image().parent / name


def machine_image(base: Path, files: dict[str, tuple[bytes, int]], dest: Path) -> Path:
    """``base`` with ``files`` (path -> (data, mode)) appended as a second archive."""
    c = Cpio()
    for path, (data, mode) in sorted(files.items()):
        c.file(path, data, mode)
    with open(dest, "wb") as out:
        with open(base, "rb") as f:
            shutil.copyfileobj(f, out)
        out.write(gzip.compress(c.close(), compresslevel=1))
    return dest
