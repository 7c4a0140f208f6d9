"""Host safety: the daemons the harness runs only inside guests stay off the host.

openssh-server, nbd-server and earlyoom are installed on the host because the
guests share its root file system, but their services must never run there
(sshd listening on port 22, earlyoom killing the user's processes).
``scripts/install-deps`` masks their units; this check verifies, without
changing anything, that

* every unit these packages ship (unit files, their aliases, and
  ``<name>.service`` for a SysV script) is masked
  (``/etc/systemd/system/<unit> -> /dev/null``) or at least not enabled (no
  link in ``/etc/systemd/system/*.wants/`` or ``*.requires/``);
* no SysV init script of theirs is enabled (no ``/etc/rc?.d/S??<name>``);
* no process of theirs runs on the host (``/proc/PID/exe``; by process name
  where the executable is not readable, i.e. another user's process).
  Processes are only reported, never stopped.

``KEXP_HOST_SERVICES="openssh-server ..."`` names packages whose host services
the user runs on purpose: not checked.  Root and /proc are parameters so that
the check runs on a fake tree in the unit tests.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

# package -> the daemon it runs in guests
GUEST_ONLY = {
    "openssh-server": "/usr/sbin/sshd",
    "nbd-server": "/usr/bin/nbd-server",
    "earlyoom": "/usr/bin/earlyoom",
}
# what the packages ship on Debian 12/13; the installed file lists add to it
KNOWN_UNITS = {
    "openssh-server": ("ssh.service", "ssh.socket", "sshd.service", "rescue-ssh.target"),
    "nbd-server": ("nbd-server.service",),
    "earlyoom": ("earlyoom.service",),
}
KNOWN_SYSV = {"openssh-server": ("ssh",), "nbd-server": ("nbd-server",), "earlyoom": ("earlyoom",)}
UNIT_DIRS = ("lib/systemd/system", "usr/lib/systemd/system")
_UNIT_FILE = re.compile(r"^/(?:usr/)?lib/systemd/system/([^/]+\.[a-z]+)$")
_SYSV = re.compile(r"^/etc/init\.d/([^/]+)$")


def _pkg_files(root: Path, pkg: str) -> list[str]:
    """The files dpkg installed for ``pkg`` (what ``dpkg -L`` prints); [] if not installed."""
    info = root / "var/lib/dpkg/info"
    for f in (info / f"{pkg}.list", *sorted(info.glob(f"{pkg}:*.list"))):
        if f.is_file():
            return f.read_text(errors="replace").splitlines()
    return []


def units(root: Path, pkg: str) -> tuple[list[str], list[str]]:
    """(systemd unit names, SysV script names) of ``pkg``: the known ones plus
    those of its installed file list, unit aliases included."""
    us, sysv = list(KNOWN_UNITS.get(pkg, ())), list(KNOWN_SYSV.get(pkg, ()))
    for line in _pkg_files(root, pkg):
        m = _UNIT_FILE.match(line)
        if m:
            us.append(m.group(1))
            f = root / line.lstrip("/")
            if f.is_file():
                for al in re.findall(r"^Alias=(.*)$", f.read_text(errors="replace"), re.M):
                    us += al.split()
        m = _SYSV.match(line)
        if m:
            sysv.append(m.group(1))
            us.append(f"{m.group(1)}.service")
    return list(dict.fromkeys(us)), list(dict.fromkeys(sysv))


def masked(root: Path, unit: str) -> bool:
    p = root / "etc/systemd/system" / unit
    return p.is_symlink() and os.readlink(p) == "/dev/null"


def enable_links(root: Path, unit: str) -> list[Path]:
    etc = root / "etc/systemd/system"
    return sorted(p for pat in (f"*.wants/{unit}", f"*.requires/{unit}")
                  for p in etc.glob(pat) if p.is_symlink() or p.exists())


def sysv_links(root: Path, name: str) -> list[Path]:
    return sorted((root / "etc").glob(f"rc[0-6S].d/S[0-9][0-9]{name}"))


def processes(proc: Path, exes: set[str]) -> list[str]:
    """Running processes whose executable is one of ``exes``."""
    names = {Path(e).name[:15]: e for e in exes}  # comm is cut at 15 characters
    out = []
    for d in sorted((p for p in proc.glob("[0-9]*") if p.name.isdigit()), key=lambda p: int(p.name)):
        try:
            exe = os.readlink(d / "exe").removesuffix(" (deleted)")
            how = ""
        except PermissionError:  # another user's process: name only
            try:
                comm = (d / "comm").read_text().strip()
            except OSError:
                continue
            if comm not in names:
                continue
            exe, how = names[comm], f" (by its name {comm}; its executable is not readable here)"
        except OSError:  # gone, or a kernel thread
            continue
        if exe in exes:
            try:
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            except OSError:
                cmd = ""
            out.append(f"pid {d.name}: {exe} is running on the host{how}"
                       + (f": {cmd[:120]}" if cmd else ""))
    return out


def check(root: Path | str = "/", proc: Path | str = "/proc", allow: set[str] | None = None) -> list[str]:
    """Problems found (empty: the host is safe).  ``allow``: packages not
    checked (default: ``$KEXP_HOST_SERVICES``)."""
    root, proc = Path(root), Path(proc)
    if allow is None:
        allow = set(os.environ.get("KEXP_HOST_SERVICES", "").replace(",", " ").split())
    fix = "run scripts/install-deps (it masks them)"
    out = []
    for pkg in GUEST_ONLY:
        if pkg in allow:
            continue
        us, sysv = units(root, pkg)
        for u in us:
            if masked(root, u):
                continue
            links = enable_links(root, u)
            if links:
                out.append(f"{pkg}: {u} is enabled on the host ("
                           + ", ".join("/" + str(p.relative_to(root)) for p in links) + f"); {fix}")
        for n in sysv:
            links = sysv_links(root, n)
            if links:
                out.append(f"{pkg}: SysV init script {n} is enabled on the host ("
                           + ", ".join("/" + str(p.relative_to(root)) for p in links) + f"); {fix}")
    exes = {e for p, e in GUEST_ONLY.items() if p not in allow}
    for line in processes(proc, exes):
        out.append(line + "; the harness runs it only in guests: stop it (the harness never does), "
                   "or, if it is yours on purpose, set KEXP_HOST_SERVICES to its package")
    return out
