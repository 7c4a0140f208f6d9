"""Guest instruction counts from a QEMU TCG plugin (harness/plugins/insncount.c).

Timing under TCG is noisy; the number of guest instructions executed in the
series' functions is not.  This module

* obtains QEMU's plugin API header (``include/qemu/qemu-plugin.h``) for the
  installed QEMU from Debian's ``qemu`` source package, at run time, with a
  private apt state holding a deb-src entry built from the machine's own
  Debian archive URI (as harness/kernel.py does for the kernel); nothing of
  QEMU is kept in this repository.  Cached under ``cache_dir()/qemu-plugin/``;
* compiles the plugin into that cache, keyed by the hash of source + header;
* turns a built kernel's System.map into address ranges (one per function
  whose name matches the series' patterns: symbol start up to the next
  symbol's address) and builds the ``-plugin`` QEMU option;
* parses the plugin's output.

The counts are exact only with one vCPU: QEMU 7.2's inline counters are plain
adds shared by all vCPUs.  The bench boots its counting guests with ``cpus=1``
(one vCPU thread even under multi-threaded TCG) and checks the ``vcpus``
record of the output.  The guest must run without KASLR (``nokaslr``) so that
run-time addresses are System.map's.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from .errors import HarnessError
from .paths import cache_dir
from .printer import log

PLUGIN_SRC = Path(__file__).resolve().parent / "plugins" / "insncount.c"
HEADER_IN_TARBALL = "include/qemu/qemu-plugin.h"
QEMU_SUITE = "bookworm"  # Debian 12 ships QEMU 7.2
QEMU_PACKAGE = "qemu"
QEMU_BINARY_PACKAGE = "qemu-system-x86"
KERNEL_START = 0xFFFF800000000000  # x86-64, 4-level paging: kernel half
# The series' functions: mm/mem_notify.c and kernel/cgroup/cpuset-pressure.c
# (regular expressions, matched at the start of the symbol name; static
# helpers the compiler did not inline have names of their own).
SERIES_PATTERNS = (r"_*mem_notify", r"_*cpuset_count_swapout", r"_*cpuset_swap",
                   r"cpuset_mem_pressure", r"cpuset_pressure", r"swap_kill", r"memcg_cs$",
                   r"folio_cs$", r"rate_update$", r"pressure_counts$", r"pressure_swapouts$",
                   r"oom_victim_pending$")
# never hook code: KUnit cases run once at boot
EXCLUDE_PATTERNS = (r".*(^|_)test(_|$)", r".*kunit")
# the guest runs sync(1) to delimit a measurement window
MARK_SYMBOL = "__x64_sys_sync"
TEXT_TYPES = frozenset("tTwW")


class PluginError(HarnessError):
    stage = "tcg-plugin"


@dataclass(frozen=True)
class Range:
    name: str
    start: int
    end: int

    def arg(self) -> str:
        return f"range={self.name}:{self.start:x}:{self.end:x}"


# --------------------------------------------------------------------------
# System.map


def read_system_map(text: str) -> list[tuple[int, str, str]]:
    """(address, type, name) for each line of a System.map, sorted by address."""
    out = []
    for line in text.splitlines():
        f = line.split()
        if len(f) >= 3:
            try:
                out.append((int(f[0], 16), f[1], f[2]))
            except ValueError:
                continue
    out.sort(key=lambda x: x[0])
    return out


def symbol_address(map_text: str, name: str) -> int | None:
    for addr, _t, n in read_system_map(map_text):
        if n == name:
            return addr
    return None


def symbol_ranges(map_text: str, patterns=SERIES_PATTERNS, exclude=EXCLUDE_PATTERNS) -> list[Range]:
    """One range per text symbol whose name matches a pattern (re.match):
    from its address to the next higher address of any symbol.  Aliases (two
    names at one address) keep the first name; a name seen twice (two static
    functions of the same name) gets ``#2``, ``#3``... appended."""
    syms = read_system_map(map_text)
    pats = [re.compile(p) for p in patterns]
    excl = [re.compile(p) for p in exclude]
    addrs = sorted({a for a, _t, _n in syms})
    nxt = {a: b for a, b in zip(addrs, addrs[1:], strict=False)}
    out: list[Range] = []
    seen_addr: set[int] = set()
    names: dict[str, int] = {}
    for addr, typ, name in syms:
        if typ not in TEXT_TYPES or addr in seen_addr or addr not in nxt:
            continue
        if not any(p.match(name) for p in pats) or any(p.match(name) for p in excl):
            continue
        seen_addr.add(addr)
        names[name] = names.get(name, 0) + 1
        label = name if names[name] == 1 else f"{name}#{names[name]}"
        out.append(Range(label, addr, nxt[addr]))
    return out


def kernel_system_map(kernel) -> str:
    p = Path(kernel.out) / "System.map"
    if not p.is_file():
        raise PluginError(f"{p} missing: the kernel build leaves System.map in its O= directory")
    return p.read_text()


# --------------------------------------------------------------------------
# plugin arguments and output


def plugin_arg(so: Path | str, ranges: list[Range], out: Path | str, mark: int | None = None,
               kernel_start: int = KERNEL_START) -> str:
    """The value of QEMU's -plugin option: ``SO,range=...,kernel=...,mark=...,out=...``."""
    for x in (str(so), str(out)):
        if "," in x:
            raise PluginError(f"QEMU splits -plugin arguments at commas: {x!r}")
    args = [str(so), *(r.arg() for r in ranges), f"kernel={kernel_start:x}"]
    if mark is not None:
        args.append(f"mark={mark:x}")
    args.append(f"out={out}")
    return ",".join(args)


@dataclass
class Counts:
    vcpus: int = 0
    kernel: int = 0
    ranges: dict[str, dict] = field(default_factory=dict)  # name -> start, end, insns, calls
    marks: list[dict] = field(default_factory=list)  # kernel, insns {name: n}, calls {name: n}

    def window(self, i: int, j: int) -> dict:
        """Counters between mark i and mark j: kernel, series (sum of ranges),
        per-range insns and calls."""
        a, b = self.marks[i], self.marks[j]
        insns = {k: b["insns"][k] - a["insns"].get(k, 0) for k in b["insns"]}
        calls = {k: b["calls"][k] - a["calls"].get(k, 0) for k in b["calls"]}
        return {"kernel": b["kernel"] - a["kernel"], "series": sum(insns.values()),
                "insns": insns, "calls": calls}


def parse_output(text: str) -> Counts:
    """Parse what insncount.c writes at exit (see its header comment)."""
    c = Counts()
    order: list[str] = []
    seen_header = False
    for line in text.splitlines():
        f = line.split()
        if not f:
            continue
        if f[0] == "insncount":
            seen_header = True
        elif f[0] == "vcpus":
            c.vcpus = int(f[1])
        elif f[0] == "range" and len(f) == 6:
            order.append(f[1])
            c.ranges[f[1]] = {"start": int(f[2], 16), "end": int(f[3], 16),
                              "insns": int(f[4]), "calls": int(f[5])}
        elif f[0] == "kernel":
            c.kernel = int(f[1])
        elif f[0] == "mark" and len(f) == 5:
            ins = [] if f[3] == "-" else [int(x) for x in f[3].split(",")]
            cal = [] if f[4] == "-" else [int(x) for x in f[4].split(",")]
            if len(ins) != len(order) or len(cal) != len(order):
                raise PluginError(f"insncount output: mark with {len(ins)} counters, "
                                  f"{len(order)} ranges: {line[:200]}")
            c.marks.append({"kernel": int(f[2]), "insns": dict(zip(order, ins, strict=True)),
                            "calls": dict(zip(order, cal, strict=True))})
    if not seen_header:
        raise PluginError("not insncount output (no 'insncount' header line)")
    return c


# --------------------------------------------------------------------------
# the header, from Debian's qemu source package


def _dpkg_version(fmt: str) -> str:
    p = subprocess.run(["dpkg-query", "-W", "-f", fmt, QEMU_BINARY_PACKAGE],
                       capture_output=True, text=True)
    if p.returncode or not p.stdout.strip():
        raise PluginError(f"dpkg-query: {QEMU_BINARY_PACKAGE} not installed: {p.stderr.strip()}")
    return p.stdout.strip()


def installed_qemu_source_version() -> str:
    """Source version of the installed QEMU, e.g. 1:7.2+dfsg-7+deb12u18 (the
    binary may carry a binNMU suffix such as +b3 that the source lacks)."""
    return _dpkg_version("${source:Version}")


def _apt_opts(aptd: Path) -> list[str]:
    return ["-o", f"Dir::Etc::SourceList={aptd / 'sources.list'}",
            "-o", "Dir::Etc::SourceParts=/dev/null",
            "-o", f"Dir::State::Lists={aptd / 'lists'}",
            "-o", "APT::Sandbox::User=root"]


def _run(cmd: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if p.returncode:
        raise PluginError(f"command failed ({p.returncode}): {' '.join(cmd)}\n"
                          f"{(p.stdout + p.stderr)[-2000:]}")
    return p


def deb_src_lines(main: str, sec: str | None, suite: str = QEMU_SUITE,
                  keyring: Path = Path("/usr/share/keyrings/debian-archive-keyring.gpg")) -> list[str]:
    opt = f"[signed-by={keyring}] " if keyring.is_file() else ""
    lines = [f"deb-src {opt}{main} {suite} main", f"deb-src {opt}{main} {suite}-updates main"]
    if sec:
        lines.append(f"deb-src {opt}{sec} {suite}-security main")
    return lines


def qemu_plugin_header() -> Path:
    """include/qemu/qemu-plugin.h of the installed QEMU's Debian source (cached)."""
    from .kernel import _debian_uris

    version = installed_qemu_source_version()
    base = cache_dir() / "qemu-plugin"
    hdir = base / "include" / re.sub(r"[^A-Za-z0-9.+~-]", "_", version)
    hdr = hdir / "qemu-plugin.h"
    if hdr.is_file():
        return hdr
    main, sec = _debian_uris()
    if not main:
        raise PluginError("no Debian archive URI found in /etc/apt/sources.list{,.d}")
    aptd = base / "apt"
    (aptd / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    (aptd / "sources.list").write_text("\n".join(deb_src_lines(main, sec)) + "\n")
    opts = _apt_opts(aptd)
    log("tcg-plugin", f"apt-get update (deb-src {QEMU_SUITE}, private state in {aptd})")
    _run(["apt-get", "-q", *opts, "update"])
    src = base / "src"
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    got = version
    log("tcg-plugin", f"downloading Debian source {QEMU_PACKAGE}={version} (~24 MB) for {HEADER_IN_TARBALL}")
    p = subprocess.run(["apt-get", "-q", *opts, "source", "--download-only", f"{QEMU_PACKAGE}={version}"],
                       cwd=src, capture_output=True, text=True)
    if p.returncode:
        # the archive moved on: the plugin API is fixed within an upstream
        # release, so the newest upload of the same upstream version will do
        got = _same_upstream(opts, version)
        if not got:
            raise PluginError(f"{QEMU_PACKAGE}={version} not downloadable and no other "
                              f"{version.split('-')[0]} upload offered:\n{(p.stdout + p.stderr)[-1500:]}")
        log("warning", f"{QEMU_PACKAGE}={version} not offered; using {got} (same upstream)")
        _run(["apt-get", "-q", *opts, "source", "--download-only", f"{QEMU_PACKAGE}={got}"], cwd=src)
    origs = sorted(src.glob(f"{QEMU_PACKAGE}_*.orig.tar.*"))
    if not origs:
        raise PluginError(f"apt-get source left no orig tarball in {src}")
    text = None
    with tarfile.open(origs[0]) as tf:
        for m in tf:
            if m.isfile() and m.name.split("/", 1)[-1] == HEADER_IN_TARBALL:
                fobj = tf.extractfile(m)
                text = fobj.read() if fobj else None
                break
    if text is None:
        raise PluginError(f"{origs[0].name} has no {HEADER_IN_TARBALL}")
    touched = _debian_patches_touching(src, HEADER_IN_TARBALL)
    if touched:
        # none did for 1:7.2+dfsg-7+deb12u18; say so if a later upload does
        log("warning", f"Debian patches {', '.join(touched)} change {HEADER_IN_TARBALL}; "
                       "the plugin is built against the upstream header")
    hdir.mkdir(parents=True, exist_ok=True)
    hdr.write_bytes(text)
    (hdir / "origin.json").write_text(json.dumps({
        "package": QEMU_PACKAGE, "installed": version, "downloaded": got, "tarball": origs[0].name,
        "member": HEADER_IN_TARBALL, "debian_patches_touching_it": touched}, indent=1))
    shutil.rmtree(src, ignore_errors=True)  # 24 MB we no longer need
    log("tcg-plugin", f"{hdr} from {origs[0].name}")
    return hdr


def _same_upstream(opts: list[str], version: str) -> str | None:
    out = subprocess.run(["apt-cache", *opts, "showsrc", QEMU_PACKAGE], capture_output=True,
                         text=True).stdout
    up = version.rsplit("-", 1)[0]
    cands = [v for v in set(re.findall(r"^Version: (\S+)$", out, re.M))
             if v.rsplit("-", 1)[0] == up and v != version]
    newest = None
    for v in cands:
        if newest is None or subprocess.run(["dpkg", "--compare-versions", v, "gt", newest]).returncode == 0:
            newest = v
    return newest


def _debian_patches_touching(src: Path, member: str) -> list[str]:
    out = []
    for deb in src.glob(f"{QEMU_PACKAGE}_*.debian.tar.*"):
        with tarfile.open(deb) as tf:
            for m in tf:
                if m.isfile() and "/patches/" in m.name:
                    fobj = tf.extractfile(m)
                    if fobj and member.encode() in fobj.read():
                        out.append(m.name.rsplit("/", 1)[-1])
    return out


def build_plugin(header: Path | None = None, src: Path = PLUGIN_SRC) -> Path:
    """Compile insncount.c against the header; cached by hash of both."""
    header = header or qemu_plugin_header()
    h = hashlib.sha256(src.read_bytes() + b"\0" + header.read_bytes()).hexdigest()[:16]
    so = cache_dir() / "qemu-plugin" / "build" / h / "insncount.so"
    if so.is_file():
        return so
    so.parent.mkdir(parents=True, exist_ok=True)
    tmp = so.with_suffix(".so.tmp")
    _run(["gcc", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-shared", "-fPIC",
          "-I", str(header.parent), "-o", str(tmp), str(src)])
    tmp.rename(so)
    log("tcg-plugin", f"built {so}")
    return so


def counting_opts(kernel, out: Path, patterns=SERIES_PATTERNS,
                  mark_symbol: str | None = MARK_SYMBOL) -> tuple[list[str], list[Range]]:
    """QEMU options that load the plugin for ``kernel`` (ranges from its
    System.map), writing counts to ``out``; and the ranges used."""
    smap = kernel_system_map(kernel)
    ranges = symbol_ranges(smap, patterns)
    mark = symbol_address(smap, mark_symbol) if mark_symbol else None
    if mark_symbol and mark is None:
        raise PluginError(f"{mark_symbol} not in {kernel.out}/System.map")
    so = build_plugin()
    return ["-plugin", plugin_arg(so, ranges, out, mark)], ranges
