"""Scenario definition and runner.

A scenario is a Python module (harness/scenarios/<name>.py) exposing
``SCENARIO = Scenario(...)`` plus a jinja2 template of the guest script
(harness/templates/<name>.sh.j2).  The guest prints KTAP on stdout; the host
parses it, scans the console and dmesg for splats, and lets the scenario turn
guest-measured files into metrics.
"""

from __future__ import annotations

import copy
import hashlib
import os
import shlex
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from . import console, kconfig, ktap, vm
from .errors import HarnessError, ScenarioError
from .kernel import Kernel
from .paths import GUEST_SRC, TEMPLATES, cache_dir
from .printer import log
from .results import Check, ScenarioResult, decide


@dataclass
class Scenario:
    name: str
    description: str
    guest: vm.GuestSpec
    template: str = ""  # defaults to <name>.sh.j2
    disks: dict[str, str] = field(default_factory=dict)  # file name -> size (e.g. "256M")
    allow_splats: frozenset[str] = frozenset()
    allow_patterns: tuple[str, ...] = ()
    feature: str | None = None  # None: no new kernel feature (runs the same on baseline)
    params: dict = field(default_factory=dict)
    # evaluate(result, rundir, kernel) may add Checks/metrics from guest-measured files
    evaluate: Callable[[ScenarioResult, Path, Kernel], None] | None = None
    # prepare(kernel, rundir) -> dict: host-side build steps (e.g. a kselftest
    # from the kernel tree); the dict is available to the template as `extra`
    prepare: Callable[[Kernel, Path], dict] | None = None
    ci: bool = True  # part of `make test`

    @property
    def template_name(self) -> str:
        return self.template or f"{self.name}.sh.j2"


def guest_tools() -> Path:
    """Compile harness/guest/*.c for the guest (which shares the host root)."""
    srcs = sorted(GUEST_SRC.glob("*.c"))
    h = hashlib.sha256()
    for s in srcs:
        h.update(s.name.encode())
        h.update(s.read_bytes())
    d = cache_dir() / "guest-tools" / h.hexdigest()[:12]
    if all((d / s.stem).is_file() for s in srcs):
        return d
    d.mkdir(parents=True, exist_ok=True)
    for s in srcs:
        cmd = ["gcc", "-O2", "-Wall", "-o", str(d / s.stem), str(s), "-lpthread"]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode:
            raise ScenarioError(f"cannot build guest tool {s.name}:\n{p.stderr[-2000:]}")
    log("tools", f"guest tools built in {d}")
    return d


def build_selftest(kernel: Kernel, rundir: Path, source: str, extra: tuple[str, ...] = (),
                   uapi: tuple[str, ...] = ()) -> dict:
    """Build a kselftest of the series from the patched tree, for the guest.

    ``source`` and ``extra`` are paths inside the kernel tree; ``uapi`` names
    headers of include/uapi/linux/ that the test includes (copied so that the
    host's older headers do not shadow them).  The baseline tree has no such
    test: the patched tree's is used, and it reports the feature absent there.
    Returns ``{"selftest": path}``, empty if no tree has the test.
    """
    from . import kernel as kmod

    src = Path(kernel.src)
    if not (src / source).is_file():
        pk = kmod.load_built("patched")
        src = Path(pk.src) if pk else src
    if not (src / source).is_file():
        return {"selftest": ""}
    inc = rundir / "include"
    (inc / "linux").mkdir(parents=True, exist_ok=True)
    for h in uapi:
        (inc / "linux" / h).write_bytes((src / "include/uapi/linux" / h).read_bytes())
    out = rundir / Path(source).stem
    cmd = ["gcc", "-O2", "-Wall", "-I", str(inc), "-I", str((src / source).parent),
           "-I", str(src / "tools/testing/selftests"), "-o", str(out), str(src / source),
           *(str(src / e) for e in extra)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode:
        raise ScenarioError(f"cannot build {source}:\n{p.stderr[-2000:]}")
    return {"selftest": str(out)}


def render(template: str, ctx: dict) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.get_template(template).render(**ctx)


def requested_options(kernel: Kernel) -> list[str]:
    names = kconfig.COMMON + (kconfig.SERIES if kernel.kind == "patched" else []) \
        + (kconfig.DEBUG if kernel.debug else [])
    req = kconfig.requested(kconfig.fragment_paths(names))
    return [f"{e.name}={e.value}" for e in req.values()]


def run(scn: Scenario, kernel: Kernel, rundir: Path, accel: str | None = None) -> ScenarioResult:
    """Run one scenario on one kernel.  Never raises for infrastructure errors:
    they come back as outcome ERROR with the message."""
    rundir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    res = ScenarioResult(scenario=scn.name, kernel=kernel.kind, outcome="ERROR", rundir=str(rundir))
    try:
        _run(scn, kernel, rundir, accel, res)
    except HarnessError as e:
        res.error = f"{e.stage}: {e}"
        res.outcome = "ERROR"
        log("ERROR", f"{scn.name}[{kernel.kind}]: {res.error.splitlines()[0]}")
    finally:
        # swap images hold hundreds of MB of hog data: keep only the logs
        if os.environ.get("KEXP_KEEP_DISKS") != "1":
            for fname in scn.disks:
                (rundir / fname).unlink(missing_ok=True)
    res.seconds = time.monotonic() - t0
    return res


def _run(scn: Scenario, kernel: Kernel, rundir: Path, accel: str | None, res: ScenarioResult) -> None:
    tools = guest_tools()
    accel = accel or vm.accelerator(kernel.image)
    res.accel = accel
    spec = copy.deepcopy(scn.guest)
    disks = {}
    for fname, size in scn.disks.items():
        p = rundir / fname
        p.unlink(missing_ok=True)
        subprocess.run(["truncate", "-s", size, str(p)], check=True)
        spec.disks.append(str(p))
        disks[fname] = f"/dev/vd{chr(ord('a') + len(disks))}"
    spec.rwdirs.append(str(rundir))
    (rundir / "requested-config.txt").write_text("\n".join(requested_options(kernel)) + "\n")
    ctx = {
        "scenario": scn.name, "kernel": kernel, "tools": str(tools), "out": str(rundir),
        "disks": disks, "params": scn.params, "spec": spec, "feature": scn.feature,
        "extra": scn.prepare(kernel, rundir) if scn.prepare else {},
    }
    try:
        script = render(scn.template_name, ctx)
    except jinja2.TemplateError as e:
        raise ScenarioError(f"template {scn.template_name}: {e}") from e
    (rundir / "guest.sh").write_text(script)
    res.reproducer = f"make scenario S={scn.name}" + (" BASELINE=1" if kernel.kind == "baseline" else "")
    g = vm.run_exec(spec, kernel.image, f"bash {shlex.quote(str(rundir / 'guest.sh'))}", rundir, accel)
    res.boot_seconds = g.seconds
    (rundir / "ktap.log").write_text(g.stdout)
    rep = ktap.parse(g.stdout)
    if not rep.version:
        raise ScenarioError(f"guest printed no KTAP (rc={g.rc}); stderr: {g.stderr.strip()[-500:]}")
    for c in rep.cases:
        res.checks.append(Check(c.name, c.status, c.directive if c.skipped else
                                (c.diagnostics[-1] if c.diagnostics else ""), c.diagnostics))
    if not rep.complete:
        raise ScenarioError(f"KTAP incomplete: {len(rep.cases)} of {rep.plan} results "
                            f"(guest rc={g.rc}); see {rundir}/ktap.log")
    if "kexp: console capture check" not in g.console:
        log("warning", f"{scn.name}: the serial console log is empty; splats are scanned in dmesg only")
    dmesg = rundir / "dmesg.txt"
    text = g.console + "\n" + (dmesg.read_text(errors="replace") if dmesg.is_file() else "")
    seen = set()
    for s in console.scan(text, scn.allow_splats, scn.allow_patterns):
        key = (s.kind, s.line)
        if key not in seen:
            seen.add(key)
            res.splats.append({"kind": s.kind, "line": s.line, "context": s.context})
    if scn.evaluate:
        scn.evaluate(res, rundir, kernel)
    fp = res.check("feature_present")
    res.feature_missing = bool(scn.feature and fp and fp.status == "FAIL")
    res.outcome = decide(res.checks, res.splats)
    log("result", f"{scn.name}[{kernel.kind}]: {res.outcome}"
                  + (" (feature missing)" if res.feature_missing else ""))
