"""Scenario definition and runner.

A scenario is a Python module (harness/scenarios/<name>.py) exposing
``SCENARIO = Scenario(...)`` plus a jinja2 template of the guest script
(harness/templates/<name>.sh.j2).  The scenario declares its checks
(``harness.checks.CheckDef``); the guest measures each one and prints the raw
values as KTAP diagnostics; the host judges them in Python, scans the console
and dmesg for splats (timeouts and panics included) and decides the outcome.

Negative controls are variants of a scenario (``Scenario.negative``) whose
setup makes named checks fail; ``make test`` asserts that they do.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import os
import shlex
import subprocess
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from . import checks as ck
from . import console, kconfig, ktap, vm
from .errors import HarnessError, ScenarioError
from .kernel import Kernel
from .paths import GUEST_SRC, TEMPLATES, cache_dir
from .printer import log
from .results import CRASH_KINDS, Check, ScenarioResult, decide


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
    checks: tuple[ck.CheckDef, ...] = ()  # declared once: KTAP plan, skip list, judges
    # evaluate(result, rundir, kernel) may add metrics (tables, plots) from guest files
    evaluate: Callable[[ScenarioResult, Path, str], None] | None = None
    # prepare(kernel, rundir) -> dict: host-side build steps (e.g. a kselftest
    # from the kernel tree); the dict is available to the template as `extra`
    prepare: Callable[[Kernel, Path], dict] | None = None
    ci: bool = True  # part of `make test`
    # negative control: checks that must FAIL in this variant (empty: a normal scenario)
    expect_fail: tuple[str, ...] = ()
    expect_outcome: str = ""  # negative control: the outcome it must have (FAIL, CRASH)
    base: str = ""  # the scenario a negative control is a variant of
    # several machines: runner(scn, kernel, rundir, accel, res) boots and
    # drives them instead of one vng guest, judge_dir(scn, kind, rundir, res,
    # info) judges what they left (live and recorded runs alike)
    runner: Callable | None = None
    judge_dir: Callable | None = None
    # checks whose failure is recorded as XFAIL, not asserted (yet)
    recorded: tuple[str, ...] = ()

    @property
    def template_name(self) -> str:
        return self.template or f"{(self.base or self.name)}.sh.j2"

    def negative(self, suffix: str, description: str, expect_fail: tuple[str, ...],
                 guest: vm.GuestSpec | None = None, outcome: str = "FAIL", **params) -> Scenario:
        """A negative control: this scenario with ``params`` changed so that
        the ``expect_fail`` checks must fail and the run have ``outcome``
        (run on the patched kernel by ``make test``)."""
        names = {c.name for c in self.checks}
        if not set(expect_fail) <= names:
            raise ValueError(f"{self.name}: unknown checks {set(expect_fail) - names}")
        return dataclasses.replace(self, name=f"{self.name}-{suffix}", description=description,
                                   params={**self.params, **params}, expect_fail=expect_fail,
                                   expect_outcome=outcome,
                                   base=self.base or self.name, ci=False,
                                   guest=guest or self.guest)


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


def run(scn: Scenario, kernel: Kernel, rundir: Path, accel: str | None = None,
        strict: bool | None = None) -> ScenarioResult:
    """Run one scenario on one kernel.  Never raises (but for Ctrl-C):
    infrastructure errors and harness bugs come back as outcome ERROR."""
    rundir.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    res = ScenarioResult(scenario=scn.name, kernel=kernel.kind, outcome="ERROR", rundir=str(rundir))
    res.strict = ck.strict_mode() if strict is None else strict
    res.params = dict(scn.params)
    res.reproducer = f"make scenario S={scn.name}" + (" BASELINE=1" if kernel.kind == "baseline" else "")
    try:
        _run(scn, kernel, rundir, accel, res)
    except HarnessError as e:
        res.error = f"{e.stage}: {e}"
        res.outcome = "ERROR"
        log("ERROR", f"{scn.name}[{kernel.kind}]: {res.error.splitlines()[0]}")
    except Exception as e:  # a harness bug: still a result, still exit 2
        res.error = f"harness: unexpected {type(e).__name__}: {e}\n{traceback.format_exc()}"
        res.outcome = "ERROR"
        log("ERROR", f"{scn.name}[{kernel.kind}]: {res.error.splitlines()[0]}")
    finally:
        # swap images hold hundreds of MB of hog data: keep only the logs
        # (any guest using them has been stopped by now, Ctrl-C included)
        vm.kill_all()
        if os.environ.get("KEXP_KEEP_DISKS") != "1":
            for fname in scn.disks:
                (rundir / fname).unlink(missing_ok=True)
    res.seconds = time.monotonic() - t0
    return res


def _make_disks(scn: Scenario, spec: vm.GuestSpec, rundir: Path) -> dict[str, str]:
    disks = {}
    for fname, size in scn.disks.items():
        p = rundir / fname
        p.unlink(missing_ok=True)
        r = subprocess.run(["truncate", "-s", size, str(p)], capture_output=True, text=True)
        if r.returncode:
            raise ScenarioError(f"cannot create disk {p} ({size}): {r.stderr.strip()}")
        spec.disks.append(str(p))
        disks[fname] = f"/dev/vd{chr(ord('a') + len(disks))}"
    return disks


def _run(scn: Scenario, kernel: Kernel, rundir: Path, accel: str | None, res: ScenarioResult) -> None:
    accel = accel or vm.accelerator(kernel.image)
    res.accel = accel
    if scn.runner:
        (rundir / "requested-config.txt").write_text("\n".join(requested_options(kernel)) + "\n")
        t0 = time.monotonic()
        try:
            scn.runner(scn, kernel, rundir, accel, res)
        except HarnessError:
            # a machine that never got ready: a crash of the kernel under
            # test if its console says so, else infrastructure (ERROR)
            scn.judge_dir(scn, kernel.kind, rundir, res, kernel.to_dict())
            if not res.crash:
                raise
            res.outcome = "CRASH"
            log("result", f"{scn.name}[{kernel.kind}]: CRASH ({res.crash})")
            return
        res.boot_seconds = time.monotonic() - t0
        scn.judge_dir(scn, kernel.kind, rundir, res, kernel.to_dict())
        log("result", f"{scn.name}[{kernel.kind}]: {res.outcome}")
        return
    tools = guest_tools()
    spec = copy.deepcopy(scn.guest)
    disks = _make_disks(scn, spec, rundir)
    spec.rwdirs.append(str(rundir))
    (rundir / "requested-config.txt").write_text("\n".join(requested_options(kernel)) + "\n")
    ctx = {
        "scenario": scn.name, "kernel": kernel, "tools": str(tools), "out": str(rundir),
        "disks": disks, "params": scn.params, "spec": spec, "feature": scn.feature,
        "checks": scn.checks,
        "extra": scn.prepare(kernel, rundir) if scn.prepare else {},
    }
    try:
        script = render(scn.template_name, ctx)
    except jinja2.TemplateError as e:
        raise ScenarioError(f"template {scn.template_name}: {e}") from e
    (rundir / "guest.sh").write_text(script)
    g = vm.run_exec(spec, kernel.image, f"bash {shlex.quote(str(rundir / 'guest.sh'))}", rundir, accel)
    res.boot_seconds = g.seconds
    (rundir / "ktap.log").write_text(g.stdout)
    judge_run(scn, kernel.kind, g, rundir, res, kernel.to_dict())


def scan_splats(scn: Scenario, text: str) -> list[dict]:
    seen, out = set(), []
    for s in console.scan(text, scn.allow_splats, scn.allow_patterns):
        key = (s.kind, s.line)
        if key not in seen:
            seen.add(key)
            out.append({"kind": s.kind, "line": s.line, "context": s.context})
    return out


def judge_run(scn: Scenario, kind: str, g: vm.GuestResult, rundir: Path, res: ScenarioResult,
              info: dict | None = None) -> None:
    """Splats first (always, timeouts and panics included), then the checks."""
    dmesg = rundir / "dmesg.txt"
    # hvc0 (console.log) comes up late in boot; the serial console has the
    # early part (a splat seen on both is reported once)
    text = "\n".join((vm.boot_console(g.stderr), g.console,
                      dmesg.read_text(errors="replace") if dmesg.is_file() else ""))
    res.splats = scan_splats(scn, text)
    crashes = [s for s in res.splats if s["kind"] in CRASH_KINDS]
    if g.panicked and not crashes:
        res.crash = "kernel panic"
    elif crashes:
        res.crash = f"{crashes[0]['kind']}: {crashes[0]['line']}"
    rep = ktap.parse(g.stdout)
    if res.crash:
        # judge what was measured before the crash; the outcome is CRASH
        _judge_checks(scn, kind, g.stdout, rep, rundir, res, rep.complete, info or {})
        res.outcome = "CRASH"
        log("result", f"{scn.name}[{kind}]: CRASH ({res.crash})")
        return
    if g.timed_out:
        raise ScenarioError(f"guest gave no verdict within {scn.guest.timeout:.0f}s and its "
                            f"console shows no crash or hang; see {rundir}/console.log")
    if not rep.version:
        raise ScenarioError(f"guest printed no KTAP (rc={g.rc}); stderr: {g.stderr.strip()[-500:]}")
    if not rep.complete:
        raise ScenarioError(f"KTAP incomplete: {len(rep.cases)} of {rep.plan} results "
                            f"(guest rc={g.rc}); see {rundir}/ktap.log")
    if "kexp: console capture check" not in g.console:
        log("warning", f"{scn.name}: the serial console log is empty; splats are scanned in dmesg only")
    _judge_checks(scn, kind, g.stdout, rep, rundir, res, True, info or {})
    if scn.evaluate:
        scn.evaluate(res, rundir, kind)
    add_timeline(res, rundir)
    res.outcome = decide(res.checks, res.splats)
    log("result", f"{scn.name}[{kind}]: {res.outcome}")


def timeline(rundir: Path) -> dict | None:
    """The guest sampler's memory/swap timeline as a report plot spec."""
    f = rundir / "timeline.txt"
    rows = []
    if f.is_file():
        for ln in f.read_text(errors="replace").splitlines():
            p = ln.split()
            if len(p) == 5 and all(x.lstrip("-").isdigit() for x in p):
                rows.append([int(x) for x in p])
    if len(rows) < 2:
        return None
    t0 = rows[0][0]
    events = []
    mf = rundir / "marks.txt"
    if mf.is_file():
        for ln in mf.read_text(errors="replace").splitlines():
            p = ln.split(None, 1)
            if len(p) == 2 and p[0].isdigit():
                events.append([round((int(p[0]) - t0) / 1e9, 2), p[1]])
    return {"type": "timeline", "unit": "MiB", "x_unit": "s", "zero": True, "events": events,
            "series": {
                "MemAvailable": [[round((r[0] - t0) / 1e9, 2), round(r[1] / 1024, 1)] for r in rows],
                "swap used": [[round((r[0] - t0) / 1e9, 2), round(r[2] / 1024, 1)] for r in rows],
                "written to swap (pswpout)": [[round((r[0] - t0) / 1e9, 2),
                                               round((r[3] - rows[0][3]) / 256, 1)] for r in rows]}}


def add_timeline(res: ScenarioResult, rundir: Path) -> None:
    tl = timeline(rundir)
    if tl:
        res.metrics.setdefault("plots", {})["memory and swap over the run (guest time)"] = tl


def _judge_checks(scn: Scenario, kind: str, stdout: str, rep: ktap.Report, rundir: Path,
                  res: ScenarioResult, complete: bool, info: dict) -> None:
    res.checks = judge(scn, kind, stdout, rep, rundir, strict=res.strict, complete=complete,
                       info=info)
    res.feature_missing = any(c.status == "XFAIL" for c in res.checks) or bool(
        kind == "patched" and scn.feature and any(
            c.name == "feature_present" and c.status == "FAIL" for c in res.checks))


def judge(scn: Scenario, kind: str, stdout: str, rep: ktap.Report, rundir: Path,
          strict: bool = False, complete: bool = True, info: dict | None = None) -> list[Check]:
    """Turn the guest's measurements into judged checks, in declared order.

    * The feature probe runs first.  On the unpatched kernel an absent feature
      is XFAIL (expected) and a present one FAIL; the checks that need the
      feature are then SKIP ("feature absent"); every other check is judged.
    * A check the guest skipped stays SKIP; in strict mode a required one
      becomes FAIL.  A check the guest never reported is ERROR (or, after a
      crash, SKIP "not reached").
    * A judge that raises is a harness bug: it propagates (outcome ERROR).
    """
    meas = ck.parse_measurements(stdout)
    cases = {c.name: c for c in rep.cases}
    out: list[Check] = []
    present = True
    for d in scn.checks:
        case = cases.get(d.name)
        mk = ck.Judging(meas.get(d.name, {}), meas, scn.params, rundir, kind, info or {})

        def made(v: ck.Verdict, status: str | None = None, d=d, case=case) -> Check:
            diags = [x for x in case.diagnostics if not x.startswith("kexp-m ")] if case else []
            return Check(d.name, status or v.status, v.detail, diags, v.values, v.bound, d.doc)

        if d.needs_feature and not present:
            out.append(made(ck.skip(ck.FEATURE_ABSENT)))
            continue
        if case is None:
            out.append(made(ck.Verdict("ERROR" if complete else "SKIP",
                                       "not reported by the guest" if complete else "not reached")))
            continue
        if case.skipped:
            why = case.directive[4:].strip() or "skipped by the guest"
            status = "FAIL" if (strict and d.required) else "SKIP"
            out.append(made(ck.skip(why if status == "SKIP" else f"strict mode: required check "
                                    f"skipped: {why}"), status))
            continue
        v = d.judge(mk)
        if v.status == "SKIP" and strict and d.required:
            v = ck.fail(f"strict mode: required check skipped: {v.detail}", **v.values)
        if d.probe:
            present = v.status == "PASS"
            if kind == "baseline" and scn.feature:
                if present:
                    v = ck.fail(f"the feature is present on the unpatched kernel: {v.detail}",
                                **v.values)
                elif "setup_error" not in v.values:  # absent, not "could not look"
                    v = ck.Verdict("XFAIL", f"{ck.FEATURE_ABSENT}: {v.detail}", v.values)
        out.append(made(v))
    return out


def rejudge(scn: Scenario, kind: str, rundir: Path, info: dict | None = None,
            strict: bool = False) -> ScenarioResult:
    """Judge a saved run directory again (ktap.log, console.log and the
    guest's files): what the unit tests feed recorded and doctored guest
    output through, and ``python -m harness judge``."""
    res = ScenarioResult(scenario=scn.name, kernel=kind, outcome="ERROR", rundir=str(rundir),
                         strict=strict)
    if scn.judge_dir:
        res.params = dict(scn.params)
        scn.judge_dir(scn, kind, rundir, res, info)
        return res
    stdout = (rundir / "ktap.log").read_text(errors="replace")
    cons = rundir / "console.log"
    err = rundir / "stderr.txt"
    g = vm.GuestResult(scn.guest.name, 0, stdout, err.read_text(errors="replace")
                       if err.is_file() else "", cons.read_text(errors="replace")
                       if cons.is_file() else "kexp: console capture check", 0.0, [], "tcg",
                       panicked=False)
    g.panicked = bool(vm.PANIC_RE.search(g.console) or vm.PANIC_RE.search(vm.boot_console(g.stderr)))
    try:
        judge_run(scn, kind, g, rundir, res, info)
    except HarnessError as e:
        res.error = f"{e.stage}: {e}"
    return res
