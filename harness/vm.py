"""VM layer: boot a built kernel under QEMU with virtme-ng.

Three ways to talk to a guest:

* ``run_exec``  -- ``vng --exec SCRIPT``: one boot, one script, exit status back.
* ``ConsoleGuest`` -- pexpect on an interactive ``vng`` console (``make shell``).
* ``SshGuest`` -- paramiko over a virtio-serial port (no network at all): for
  long-lived guests that a scenario drives with several commands.

Accelerator: KVM is used only if a real tiny boot under KVM reaches the kernel's
late init within the probe timeout; the verdict is cached per host kernel and
QEMU version.  Otherwise TCG (multi-threaded) runs, and the harness says so.

Every guest's kernel console also goes to a per-run ``console.log`` (a virtio
console, hvc0, so vng's own serial console handling is left alone).
"""

from __future__ import annotations

import atexit
import json
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import BootError, GuestLost, GuestTimeout
from .paths import cache_dir
from .printer import log

VNG_VERSION = "1.42"
PANIC_RE = re.compile(r"Kernel panic - not syncing|end Kernel panic")
# a printk record as the serial console prints it: "[    1.234567] text"
_PRINTK_RE = re.compile(r"^\[\s*\d+\.\d+\] ")
# attempts at a boot whose QEMU dies before the kernel prints its first line
BOOT_ATTEMPTS = 2


def boot_console(stderr: str) -> str:
    """The kernel's serial console, from vng's stderr (``--verbose`` sends
    ttyS0 there, boot included; the guest command's own stderr is mixed in
    and dropped here)."""
    return "\n".join(ln for ln in stderr.splitlines() if _PRINTK_RE.match(ln))


def kernel_started(stderr: str) -> bool:
    return "Linux version" in boot_console(stderr)


@dataclass
class NumaNode:
    mem: str  # e.g. "256M"
    cpus: str | None = None  # e.g. "0" or "0-1"; None = memory-only node

    def vng_arg(self) -> str:
        return self.mem + (f",cpus={self.cpus}" if self.cpus is not None else "")


@dataclass
class GuestSpec:
    name: str = "guest"
    memory: str = "512M"
    cpus: int = 2
    numa: list[NumaNode] = field(default_factory=list)
    numa_distance: dict[tuple[int, int], int] = field(default_factory=dict)
    disks: list[str] = field(default_factory=list)  # host files -> /dev/vda, /dev/vdb...
    append: list[str] = field(default_factory=list)
    qemu_opts: list[str] = field(default_factory=list)
    rwdirs: list[str] = field(default_factory=list)
    timeout: float = 600.0

    def check(self) -> None:
        if self.numa:
            tot = sum(_mem_mb(n.mem) for n in self.numa)
            if tot != _mem_mb(self.memory):
                raise BootError(f"{self.name}: NUMA nodes add up to {tot}M, guest has {self.memory}")
            n = len(self.numa)
            if self.numa_distance and n > 2:
                for a in range(n):
                    for b in range(a + 1, n):
                        if (a, b) not in self.numa_distance and (b, a) not in self.numa_distance:
                            raise BootError(f"{self.name}: QEMU needs a distance for every node "
                                            f"pair once one is given; {a},{b} is missing")


def _mem_mb(s: str) -> int:
    m = re.fullmatch(r"(\d+)([MG]?)", s.strip().upper())
    if not m:
        raise BootError(f"bad memory size {s!r}")
    v = int(m.group(1))
    return v * 1024 if m.group(2) == "G" else v


# --------------------------------------------------------------------------
# accelerator


def qemu_version() -> str:
    q = shutil.which("qemu-system-x86_64")
    if not q:
        raise BootError("qemu-system-x86_64 not installed (apt-get install qemu-system-x86)")
    out = subprocess.run([q, "--version"], capture_output=True, text=True).stdout
    return out.splitlines()[0] if out else "unknown"


def probe_kvm(image: str, timeout: float = 45.0) -> tuple[bool, str]:
    """Boot ``image`` under KVM with no root; True if it reaches late init."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False, "/dev/kvm missing or not accessible"
    cmd = ["qemu-system-x86_64", "-accel", "kvm", "-cpu", "host", "-m", "256M", "-smp", "1",
           "-nodefaults", "-nographic", "-no-reboot", "-serial", "stdio", "-kernel", image,
           "-append", "console=ttyS0 panic=-1 loglevel=7"]
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         start_new_session=True)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, _ = p.communicate()
        txt = out.decode(errors="replace")
        return False, f"no boot within {timeout:.0f}s under KVM ({len(txt)} bytes of console)"
    txt = out.decode(errors="replace")
    dt = time.monotonic() - t0
    if re.search(r"VFS: Unable to mount root|Kernel panic|Run /init|Freeing unused kernel", txt):
        return True, f"KVM boot reached late init in {dt:.1f}s"
    last = (txt.strip().splitlines() or ["(no output)"])[-1][:200]
    return False, f"KVM guest died after {dt:.1f}s: {last}"


def accelerator(image: str) -> str:
    """'kvm' or 'tcg'.  KEXP_ACCEL=tcg|kvm forces; the probe verdict is cached."""
    forced = os.environ.get("KEXP_ACCEL")
    if forced in ("tcg", "kvm"):
        log("vm", f"accelerator forced by KEXP_ACCEL: {forced.upper()}")
        return forced
    key = f"{platform.release()}|{qemu_version()}"
    cf = cache_dir() / "accel.json"
    cached = json.loads(cf.read_text()) if cf.is_file() else {}
    if cached.get("key") == key:
        v = cached["accel"]
    else:
        log("vm", "probing KVM with a real tiny boot ...")
        ok, why = probe_kvm(image)
        v = "kvm" if ok else "tcg"
        cf.write_text(json.dumps({"key": key, "accel": v, "why": why}))
        cached = {"why": why}
    if v == "tcg":
        log("vm", f"KVM unusable ({cached.get('why')}); falling back to TCG (multi-threaded), "
                  "guest time runs several times slower than wall time")
    else:
        log("vm", "accelerator: KVM")
    return v


# --------------------------------------------------------------------------
# vng command line


def vng_bin() -> str:
    # prefer the one in our virtualenv (vng runs virtme-run from the same dir)
    here = Path(sys.executable).parent / "vng"
    v = os.environ.get("KEXP_VNG") or (str(here) if here.is_file() else shutil.which("vng"))
    if not v:
        raise BootError("vng (virtme-ng) not found on PATH; run `make deps`")
    return v


def vng_argv(spec: GuestSpec, image: str, accel: str, exec_cmd: str | None,
             console_log: Path | None, vng: str = "vng") -> list[str]:
    spec.check()
    # --verbose: the serial console, boot messages included, goes to stderr;
    # it is the only record of a kernel that dies before hvc0 comes up
    argv = [vng, "--run", image, "--force-9p", "--name", spec.name,
            "--memory", spec.memory, "--cpus", str(spec.cpus), "--verbose"]
    qopts: list[str] = []
    if accel == "tcg":
        argv.append("--disable-kvm")
        qopts += ["-accel", "tcg,thread=multi,tb-size=256"]
    cpu_nodes = [n for n in spec.numa if n.cpus is not None]
    if cpu_nodes and spec.cpus % len(cpu_nodes) == 0:
        # one socket per CPU-bearing node: with QEMU's default (all cores in one
        # socket sharing an LLC) the guest warns in topology_sane() at boot
        qopts += ["-smp", f"{spec.cpus},sockets={len(cpu_nodes)},"
                          f"cores={spec.cpus // len(cpu_nodes)},threads=1"]
    for n in spec.numa:
        argv += ["--numa", n.vng_arg()]
    for (a, b), d in sorted(spec.numa_distance.items()):
        argv += ["--numa-distance", f"{a},{b}={d}"]
    for d in spec.disks:
        argv += ["--disk", d]
    for d in spec.rwdirs:
        argv += ["--rwdir", d]
    append = list(spec.append)
    if console_log is not None:
        # a second printk console on a virtio console port (hvc0): the 8250
        # driver can serve only one ttyS console, and vng's goes to /dev/null
        qopts += ["-device", "virtio-serial-pci,id=kexpser",
                  "-chardev", f"file,id=kexpcon,path={console_log}",
                  "-device", "virtconsole,bus=kexpser.0,chardev=kexpcon"]
        append = ["console=hvc0", *append]
    qopts += spec.qemu_opts  # after ours: they may refer to the kexpser bus
    for a in append:
        argv += ["--append", a]
    if qopts:
        argv.append("--qemu-opts=" + " ".join(shlex.quote(o) for o in qopts))
    if exec_cmd is not None:
        argv += ["--exec", exec_cmd]
    return argv


@dataclass
class GuestResult:
    name: str
    rc: int
    stdout: str
    stderr: str
    console: str
    seconds: float
    argv: list[str]
    accel: str
    timed_out: bool = False  # the harness stopped the guest after spec.timeout
    panicked: bool = False  # "Kernel panic" on the guest console
    attempts: int = 1  # boots tried (QEMU died before the kernel started)


# --------------------------------------------------------------------------
# every QEMU this process starts: stopped on any exit (Ctrl-C, SIGTERM, error)

_LIVE: dict[int, subprocess.Popen] = {}


def _track(p: subprocess.Popen) -> None:
    _LIVE[p.pid] = p


def _untrack(p: subprocess.Popen) -> None:
    _LIVE.pop(p.pid, None)


def _killgroup(p: subprocess.Popen) -> None:
    """SIGKILL the session we started for ``p`` (vng and its QEMU), by PID."""
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
    _untrack(p)


def kill_all() -> int:
    """Stop every guest this process started and has not reaped; returns how many."""
    n = 0
    for p in list(_LIVE.values()):
        if p.poll() is None:
            n += 1
        _killgroup(p)
    return n


atexit.register(kill_all)


def run_exec(spec: GuestSpec, image: str, cmd: str, rundir: Path, accel: str | None = None,
             env: dict | None = None) -> GuestResult:
    """Boot, run ``cmd`` in the guest, power off.

    A guest that panics or outlives ``spec.timeout`` comes back with
    ``panicked``/``timed_out`` set and its console, for the caller to scan
    (a crash of the kernel under test is a verdict, not an infrastructure
    error).  Raises GuestLost only when vng/QEMU itself failed to run.

    A QEMU that exits before the kernel has printed a line (seen once on a
    loaded host: rc 255 after 1.5 s, nothing on any console) says nothing
    about the kernel under test; that boot is tried again, once, and the
    failed attempt's files are kept beside the run's."""
    for attempt in range(1, BOOT_ATTEMPTS + 1):
        try:
            g = _run_exec_once(spec, image, cmd, rundir, accel, env)
            g.attempts = attempt
            return g
        except GuestLost as e:
            se = (rundir / "stderr.txt").read_text(errors="replace")
            if attempt == BOOT_ATTEMPTS or kernel_started(se):
                raise
            for f in ("stdout.txt", "stderr.txt", "console.log"):
                if (rundir / f).is_file():
                    (rundir / f).rename(rundir / f"attempt{attempt}-{f}")
            log("vm", f"{spec.name}: QEMU died before the kernel started ({e}); booting again")
    raise AssertionError("unreachable")


def _run_exec_once(spec: GuestSpec, image: str, cmd: str, rundir: Path, accel: str | None,
                   env: dict | None) -> GuestResult:
    accel = accel or accelerator(image)
    rundir.mkdir(parents=True, exist_ok=True)
    console = rundir / "console.log"
    console.write_text("")
    argv = vng_argv(spec, image, accel, cmd, console, vng=vng_bin())
    (rundir / "argv.txt").write_text(shlex.join(argv) + "\n")
    log("vm", f"booting {spec.name} ({spec.memory}, {spec.cpus} cpus"
              + (f", {len(spec.numa)} NUMA nodes" if spec.numa else "")
              + f", {accel.upper()}), timeout {spec.timeout:.0f}s")
    e = dict(os.environ)
    e["PATH"] = f"{Path(argv[0]).parent}:{e.get('PATH', '/usr/bin:/bin')}"
    if env:
        e.update(env)
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True, env=e, cwd=str(rundir))
    _track(p)
    timed_out = False
    try:
        out, err = p.communicate(timeout=spec.timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(p.pid, signal.SIGKILL)  # our own session: vng and its qemu
        out, err = p.communicate()
    except BaseException:
        _killgroup(p)  # Ctrl-C, SIGTERM: never leave a QEMU behind
        raise
    finally:
        _untrack(p)
    dt = time.monotonic() - t0
    so, se = _save(rundir, out, err)
    ctext = console.read_text(errors="replace")
    panicked = bool(PANIC_RE.search(ctext) or PANIC_RE.search(boot_console(se)))
    if timed_out:
        log("vm", f"{spec.name}: stopped after {dt:.0f}s (timeout {spec.timeout:.0f}s)")
    else:
        log("vm", f"{spec.name}: guest exited rc={p.returncode} after {dt:.1f}s")
    if not timed_out and not panicked and p.returncode == 255 and not so.strip():
        raise GuestLost(f"{spec.name}: vng/qemu failed (rc=255): {se.strip()[-800:]}")
    return GuestResult(spec.name, p.returncode, so, se, ctext, dt, argv, accel,
                       timed_out=timed_out, panicked=panicked)


def _save(rundir: Path, out: bytes, err: bytes) -> tuple[str, str]:
    so = (out or b"").decode(errors="replace")
    se = (err or b"").decode(errors="replace")
    (rundir / "stdout.txt").write_text(so)
    (rundir / "stderr.txt").write_text(se)
    return so, se


# --------------------------------------------------------------------------
# interactive console (pexpect)


class ConsoleGuest:
    """An interactive vng console driven with pexpect (``make shell``)."""

    PROMPT = re.compile(rb"\r?\n[^\r\n]*[#$] $")

    def __init__(self, spec: GuestSpec, image: str, rundir: Path, accel: str | None = None):
        import pexpect

        self.accel = accel or accelerator(image)
        rundir.mkdir(parents=True, exist_ok=True)
        self.rundir = rundir
        self.argv = vng_argv(spec, image, self.accel, None, rundir / "console.log", vng=vng_bin())
        log("vm", f"console: {shlex.join(self.argv)}")
        self.child = pexpect.spawn(self.argv[0], self.argv[1:], timeout=spec.timeout,
                                   logfile=open(rundir / "session.log", "wb"))

    def wait_prompt(self, timeout: float = 300) -> None:
        import pexpect

        i = self.child.expect([self.PROMPT, pexpect.EOF, pexpect.TIMEOUT], timeout=timeout)
        if i == 1:
            raise GuestLost("console closed before a shell prompt appeared")
        if i == 2:
            raise GuestTimeout(f"no shell prompt within {timeout:.0f}s")

    def run(self, cmd: str, timeout: float = 120) -> str:
        import pexpect

        mark = f"__KEXP_{time.monotonic_ns()}__"
        self.child.sendline(f"{cmd}; echo {mark}$?")
        i = self.child.expect([re.compile(rf"{mark}(\d+)".encode()), pexpect.EOF, pexpect.TIMEOUT],
                              timeout=timeout)
        if i != 0:
            raise GuestLost(f"console lost while running {cmd!r}")
        return self.child.before.decode(errors="replace")

    def interact(self) -> None:
        self.child.logfile = None
        self.child.interact()

    def close(self) -> None:
        if self.child.isalive():
            try:
                self.child.sendline("poweroff -f")
                self.child.expect([__import__("pexpect").EOF], timeout=20)
            except Exception:
                self.child.terminate(force=True)


# --------------------------------------------------------------------------
# long-lived guest over ssh (paramiko), with no network at all


GUEST_SSHD = r"""#!/bin/bash
# started by vng --exec: serve ssh on a virtio-serial port until told to stop
set -u
D={rundir}
mkdir -p /run/sshd
# /etc is a throw-away overlay in the guest: unlock root for key-only login
# (sshd without PAM refuses "locked" accounts: "!..." or "*"); the field set
# here is no valid crypt hash, so no password can match it either
sed 's/^root:[^:]*:/root:kexp-key-only:/' /etc/shadow > /run/kexp-shadow
cat /run/kexp-shadow > /etc/shadow  # may be a bind mount: write in place
# commands run under /bin/sh: bash run by sshd would source root's ~/.bashrc
sed 's#^\(root:.*:\)[^:]*$#\1/bin/sh#' /etc/passwd > /run/kexp-passwd
cat /run/kexp-passwd > /etc/passwd
PORT=/dev/virtio-ports/kexp.ssh
for _ in $(seq 100); do [ -e "$PORT" ] && break; sleep 0.1; done
echo "<4>kexp: console capture check" > /dev/kmsg
cat > /run/kexp-sshd.conf <<CFG
HostKey $D/ssh_host_key
AuthorizedKeysFile $D/client_key.pub
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
StrictModes no
UsePAM no
PidFile none
LogLevel VERBOSE
Subsystem sftp internal-sftp
CFG
socat "$PORT" EXEC:"/usr/sbin/sshd -i -e -f /run/kexp-sshd.conf",nofork 2>> "$D/guest-sshd.log" &
echo "kexp-sshd: serving on $PORT"
while [ ! -e /run/kexp-stop ]; do sleep 0.2; done
dmesg > "$D/dmesg.txt"
"""


class SshGuest:
    """A guest that stays up while the host runs commands in it over ssh.

    sshd runs in the guest in inetd mode (``sshd -i``) on a virtio-serial
    port; the host end is a unix socket that paramiko uses as its transport.
    No IP traffic is involved.  Use as a context manager.
    """

    def __init__(self, spec: GuestSpec, image: str, rundir: Path, accel: str | None = None):
        self.spec = spec
        self.image = image
        self.rundir = rundir
        self.accel = accel or accelerator(image)
        self.proc: subprocess.Popen | None = None
        self.client = None

    def __enter__(self) -> SshGuest:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self, ready_timeout: float = 300) -> None:
        """Launch, then wait until ssh is up (several guests: launch them all
        first, then wait for each, so they boot concurrently)."""
        self.launch()
        self.wait_ready(ready_timeout)

    def launch(self) -> None:
        if not Path("/usr/sbin/sshd").is_file():
            raise BootError("/usr/sbin/sshd missing (apt-get install openssh-server)")
        d = self.rundir
        d.mkdir(parents=True, exist_ok=True)
        for key in ("ssh_host_key", "client_key"):
            (d / key).unlink(missing_ok=True)
            (d / f"{key}.pub").unlink(missing_ok=True)
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / key)],
                           check=True)
        sock = d / "ssh.sock"
        sock.unlink(missing_ok=True)
        (d / "guest-sshd.sh").write_text(GUEST_SSHD.replace("{rundir}", shlex.quote(str(d))))
        spec = GuestSpec(**{**self.spec.__dict__})
        spec.rwdirs = [*spec.rwdirs, str(d)]
        spec.qemu_opts = [*spec.qemu_opts,
                          "-chardev", f"socket,id=kexpssh,path={sock},server=on,wait=off",
                          "-device", "virtserialport,bus=kexpser.0,chardev=kexpssh,name=kexp.ssh"]
        argv = vng_argv(spec, self.image, self.accel, f"bash {shlex.quote(str(d / 'guest-sshd.sh'))}",
                        d / "console.log", vng=vng_bin())
        (d / "argv.txt").write_text(shlex.join(argv) + "\n")
        env = dict(os.environ)
        env["PATH"] = f"{Path(argv[0]).parent}:{env.get('PATH', '/usr/bin:/bin')}"
        log("vm", f"starting long-lived guest {spec.name} ({self.accel.upper()}), ssh over virtio-serial")
        self.out = open(d / "stdout.txt", "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.out,
                                     stderr=subprocess.STDOUT, start_new_session=True, env=env,
                                     cwd=str(d))
        _track(self.proc)
        self._sock, self._spec = sock, spec

    def wait_ready(self, ready_timeout: float = 300) -> None:
        try:
            self._connect(self.rundir, self._sock, self._spec, ready_timeout)
        except BaseException:
            self._kill()
            raise

    def _kill(self) -> None:
        if self.proc is not None:
            _killgroup(self.proc)  # our own session only
        self.proc = None
        self.out.close()

    def _connect(self, d: Path, sock: Path, spec: GuestSpec, ready_timeout: float) -> None:
        import paramiko

        t0 = time.monotonic()
        while True:
            if self.proc.poll() is not None:
                raise GuestLost(f"{spec.name}: guest exited (rc={self.proc.returncode}) before ssh "
                                f"was up; see {d}/stdout.txt")
            if time.monotonic() - t0 > ready_timeout:
                raise GuestTimeout(f"{spec.name}: ssh not up after {ready_timeout:.0f}s")
            if "kexp-sshd: serving" in (d / "stdout.txt").read_text(errors="replace"):
                break
            time.sleep(0.3)
        import socket

        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(str(sock))
        t = paramiko.Transport(s)
        t.start_client(timeout=60)
        hostkey = paramiko.Ed25519Key.from_private_key_file(str(d / "ssh_host_key"))
        if t.get_remote_server_key().asbytes() != hostkey.asbytes():
            raise BootError("guest ssh host key mismatch")
        t.auth_publickey("root", paramiko.Ed25519Key.from_private_key_file(str(d / "client_key")))
        self.transport = t
        log("vm", f"{spec.name}: ssh up after {time.monotonic() - t0:.1f}s")

    def run(self, cmd: str, timeout: float = 600) -> tuple[int, str, str]:
        """Run ``cmd`` in the guest; return (exit status, stdout, stderr)."""
        if self.proc is None or self.proc.poll() is not None:
            raise GuestLost(f"{self.spec.name}: guest is gone")
        ch = self.transport.open_session(timeout=30)
        ch.settimeout(timeout)
        ch.exec_command(cmd)
        try:
            out = ch.makefile("rb").read().decode(errors="replace")
            err = ch.makefile_stderr("rb").read().decode(errors="replace")
            rc = ch.recv_exit_status()
        except OSError as e:  # socket.timeout is an OSError
            raise GuestTimeout(f"{self.spec.name}: {cmd!r} did not finish in {timeout:.0f}s") from e
        finally:
            ch.close()
        return rc, out, err

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            if self.proc.poll() is None and getattr(self, "transport", None):
                ch = self.transport.open_session(timeout=10)
                ch.exec_command("touch /run/kexp-stop")
                ch.recv_exit_status()
            self.proc.wait(timeout=60)
        except Exception:
            pass  # killed below
        finally:
            _killgroup(self.proc)  # no-op if it exited; our own session only
            if getattr(self, "transport", None):
                self.transport.close()
            self.out.close()
            self.proc = None
