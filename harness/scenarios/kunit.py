"""kunit: the series' KUnit suites, run at boot, each case reported.

The first suite's check doubles as ``feature_present`` so the baseline kernel
(which has none of the suites) reports the feature missing.
"""

from __future__ import annotations

from pathlib import Path

from .. import ktap
from ..results import Check, ScenarioResult
from ..scenario import Scenario
from ..vm import GuestSpec

SUITES = ["mem_notify"]


def evaluate(res: ScenarioResult, rundir: Path, kernel) -> None:
    f = rundir / "kunit-dmesg.txt"
    if not f.is_file():
        return
    for doc in ktap.find_all(f.read_text(errors="replace")):
        for suite in doc.cases:
            for case in suite.children:
                res.checks.append(Check(f"{suite.name}.{case.name}", case.status,
                                        case.diagnostics[-1] if case.diagnostics else "",
                                        case.diagnostics))
    first = res.check(f"suite_{SUITES[0]}")
    if first is not None:
        res.checks.insert(0, Check("feature_present", first.status, first.detail, first.diagnostics))


SCENARIO = Scenario(
    name="kunit",
    description="the series' KUnit suites (run at boot with kunit.enable=1)",
    guest=GuestSpec(name="kunit", memory="256M", cpus=2, append=["kunit.enable=1"], timeout=300),
    feature="mem_notify",
    params={"suites": SUITES},
    evaluate=evaluate,
)
