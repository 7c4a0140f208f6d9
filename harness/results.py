"""Outcomes, results.json, JUnit XML and the text table.

Outcome per scenario run:
  PASS  -- every check was judged and met its bound
  XFAIL -- the unpatched kernel lacks the scenario's feature, as expected, and
           every check that does not need the feature passed (a success)
  SKIP  -- every check was skipped (e.g. a tool missing in the guest)
  FAIL  -- a check failed, an unexpected warning/lockdep splat, or the feature
           is present where it must not be
  CRASH -- the kernel under test panicked, oopsed, hit BUG/KASAN, hung or
           stalled (console scanned in every case, timeouts included): a failure
  ERROR -- infrastructure: build, QEMU, host tools, the harness's own timeout,
           or a harness bug (an unexpected exception)

Exit code of a run: 0 if every outcome is PASS, XFAIL or SKIP; 1 if any is
FAIL or CRASH; 2 if any is ERROR (ERROR wins).
"""

from __future__ import annotations

import json
import platform
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path

OUTCOMES = ("PASS", "XFAIL", "SKIP", "FAIL", "CRASH", "ERROR")
ORDER = {"PASS": 0, "XFAIL": 0, "SKIP": 0, "FAIL": 1, "CRASH": 1, "ERROR": 2}
# splat kinds that mean the kernel under test crashed, hung or stalled
CRASH_KINDS = frozenset({"panic", "oops", "bug", "kasan", "hung_task", "rcu_stall", "soft_lockup"})


@dataclass
class Check:
    name: str
    status: str  # PASS FAIL SKIP ERROR XFAIL
    detail: str = ""
    diagnostics: list[str] = field(default_factory=list)
    values: dict = field(default_factory=dict)
    bound: str = ""
    doc: str = ""


@dataclass
class ScenarioResult:
    scenario: str
    kernel: str  # patched | baseline
    outcome: str
    checks: list[Check] = field(default_factory=list)
    splats: list[dict] = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0
    boot_seconds: float = 0.0
    accel: str = ""
    rundir: str = ""
    reproducer: str = ""
    metrics: dict = field(default_factory=dict)
    feature_missing: bool = False
    crash: str = ""  # why the outcome is CRASH (panic, hung task, ...)
    params: dict = field(default_factory=dict)  # the scenario parameters of this run
    strict: bool = False

    def check(self, name: str) -> Check | None:
        for c in self.checks:
            if c.name == name:
                return c
        return None


def decide(checks: list[Check], splats: list, error: str = "", crash: str = "") -> str:
    """The outcome of one scenario run (see the module docstring)."""
    if error:
        return "ERROR"
    if crash or any(s.get("kind") in CRASH_KINDS for s in splats):
        return "CRASH"
    if not checks or any(c.status == "ERROR" for c in checks):
        return "ERROR"
    if any(c.status == "FAIL" for c in checks) or splats:
        return "FAIL"
    if any(c.status == "XFAIL" for c in checks):
        return "XFAIL"
    if all(c.status == "SKIP" for c in checks):
        return "SKIP"
    return "PASS"


def exit_code(results: list[ScenarioResult]) -> int:
    return max((ORDER.get(r.outcome, 2) for r in results), default=0)


@dataclass
class RunRecord:
    started: str
    kernel: dict
    results: list[ScenarioResult]
    command: str
    host: dict = field(default_factory=lambda: {"machine": platform.node(),
                                                "python": platform.python_version()})

    def to_dict(self) -> dict:
        d = asdict(self)
        d["exit_code"] = exit_code(self.results)
        d["summary"] = summary(self.results)
        return d


def summary(results: list[ScenarioResult]) -> dict:
    s = dict.fromkeys(OUTCOMES, 0)
    for r in results:
        s[r.outcome] += 1
    return s


def write_json(rec: RunRecord, path: Path) -> None:
    path.write_text(json.dumps(rec.to_dict(), indent=1, default=str))


def write_junit(rec: RunRecord, path: Path) -> None:
    """One testsuite per scenario run, one testcase per check.

    XFAIL (the feature absent on the unpatched kernel, as expected) is a
    passing testcase; CRASH is a failure of type "crash"; ERROR an error."""
    suites = ET.Element("testsuites", name="kexp")
    for r in rec.results:
        ts = ET.SubElement(suites, "testsuite", name=f"{r.scenario}[{r.kernel}]",
                           time=f"{r.seconds:.1f}")
        ET.SubElement(ET.SubElement(ts, "properties"), "property", name="outcome", value=r.outcome)
        if r.error:
            tc = ET.SubElement(ts, "testcase", classname=r.scenario, name="run")
            ET.SubElement(tc, "error", message=r.error.splitlines()[0][:200]).text = r.error
        if r.crash:
            tc = ET.SubElement(ts, "testcase", classname=f"{r.scenario}.{r.kernel}", name="kernel")
            ET.SubElement(tc, "failure", type="crash", message=r.crash[:200]).text = r.crash
        for c in r.checks:
            tc = ET.SubElement(ts, "testcase", classname=f"{r.scenario}.{r.kernel}", name=c.name)
            text = "\n".join([*(f"{k}={v}" for k, v in c.values.items()), *c.diagnostics])
            if c.status == "FAIL":
                ET.SubElement(tc, "failure", message=c.detail[:200]).text = text
            elif c.status == "ERROR":
                ET.SubElement(tc, "error", message=c.detail[:200]).text = text
            elif c.status == "SKIP":
                ET.SubElement(tc, "skipped", message=c.detail[:200])
            elif c.status == "XFAIL":
                ET.SubElement(tc, "system-out").text = f"expected: {c.detail}"
        # several machines: one testcase each (its console, timings, splats)
        for name, m in (r.metrics.get("machines") or {}).items():
            tc = ET.SubElement(ts, "testcase", classname=f"{r.scenario}.{r.kernel}",
                               name=f"machine:{name}")
            ET.SubElement(tc, "system-out").text = "\n".join(f"{k}={v}" for k, v in m.items())
            if m.get("ready_s") is None:
                ET.SubElement(tc, "failure", message=f"machine {name} never got ready")
        for s in r.splats:
            tc = ET.SubElement(ts, "testcase", classname=f"{r.scenario}.{r.kernel}",
                               name=f"splat:{s.get('machine', '') + ':' if s.get('machine') else ''}"
                                    f"{s['kind']}")
            ET.SubElement(tc, "failure", type="crash" if s["kind"] in CRASH_KINDS else "splat",
                          message=s["line"][:200]).text = s["context"]
        cases = ts.findall("testcase")
        ts.set("tests", str(len(cases)))
        for what, tag in (("failures", "failure"), ("errors", "error"), ("skipped", "skipped")):
            ts.set(what, str(sum(1 for tc in cases if tc.find(tag) is not None)))
    ET.ElementTree(suites).write(path, encoding="unicode", xml_declaration=True)


def note(r: ScenarioResult) -> str:
    if r.error:
        return r.error.splitlines()[0][:70]
    if r.crash:
        return "crash: " + r.crash.splitlines()[0][:62]
    if r.splats:
        return f"{len(r.splats)} splat(s): " + ",".join(sorted({s['kind'] for s in r.splats}))
    bad = [k.name for k in r.checks if k.status in ("FAIL", "ERROR")]
    if bad:
        return ("failed: " + ",".join(bad))[:70]
    if r.outcome == "XFAIL":
        rec = [k.name for k in r.checks if k.status == "XFAIL" and "recorded, not asserted"
               in k.detail]
        if rec:
            return ("recorded, not asserted: " + ",".join(rec))[:70]
        return "feature absent on the unpatched kernel, as expected"
    return ""


def table(results: list[ScenarioResult]) -> str:
    rows = [("scenario", "kernel", "outcome", "checks", "time", "note")]
    for r in results:
        c = dict.fromkeys(("PASS", "FAIL", "SKIP", "ERROR", "XFAIL"), 0)
        for k in r.checks:
            c[k.status] = c.get(k.status, 0) + 1
        rows.append((r.scenario, r.kernel, r.outcome,
                     f"{c['PASS']}/{len(r.checks)} ok" + (f", {c['SKIP']} skip" if c["SKIP"] else ""),
                     f"{r.seconds:.0f}s", note(r)))
    w = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(str(v).ljust(w[i]) for i, v in enumerate(row)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * x for x in w))
    s = summary(results)
    lines.append("scenario runs: " + ", ".join(f"{k} {s[k]}" for k in OUTCOMES)
                 + f"; exit code {exit_code(results)}")
    return "\n".join(lines)


def write_html(rec: RunRecord, path: Path) -> None:
    from . import report

    report.write_html(rec, path)


def stamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")
