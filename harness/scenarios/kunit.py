"""kunit: the series' KUnit suites, run at boot, every case reported.

The guest only saves the kernel log; the host finds each suite's KTAP in it.
``feature_present``: the first suite ran at all (absent on the unpatched
kernel).  ``suite_<name>``: the suite ran to its end and every case passed;
each case's result is in the check's values.
"""

from __future__ import annotations

from .. import checks as ck
from .. import ktap
from ..checks import CheckDef, Judging
from ..scenario import Scenario
from ..vm import GuestSpec

SUITES = ["mem_notify", "emergpool", "slub_pfmemalloc"]


def suite_cases(log: str, suite: str) -> tuple[ktap.Case | None, list[ktap.Case]]:
    for doc in ktap.find_all(log):
        for s in doc.cases:
            if s.name == suite:
                return s, s.children
    return None, []


def j_present(j: Judging) -> ck.Verdict:
    suite, cases = suite_cases(j.text(j.m.get("log", "")), j.params["suites"][0])
    return ck.verdict(suite is not None, f"KUnit suite {j.params['suites'][0]}: "
                      + (f"{len(cases)} cases ran" if suite else "did not run"), cases=len(cases))


def suite_judge(name: str):
    def j_suite(j: Judging) -> ck.Verdict:
        suite, cases = suite_cases(j.text(j.m.get("log", "")), name)
        if suite is None:
            return ck.fail(f"suite {name} did not run")
        res = {c.name: c.status for c in cases}
        bad = [n for n, st in res.items() if st not in ("PASS", "SKIP")]
        return ck.verdict(suite.ok and not bad and bool(cases),
                          f"{len(cases)} cases; " + (f"failed: {', '.join(bad)}" if bad else "all passed"),
                          "every case ok", **res)
    return j_suite


CHECKS = (
    ck.feature_probe("the first KUnit suite of the series ran at boot", j_present),
    *(CheckDef(f"suite_{s}", f"every case of KUnit suite {s} passed (per-case results in values)",
               suite_judge(s), needs_feature=True) for s in SUITES),
)

SCENARIO = Scenario(
    name="kunit",
    description="the series' KUnit suites (run at boot with kunit.enable=1)",
    guest=GuestSpec(name="kunit", memory="256M", cpus=2, append=["kunit.enable=1"], timeout=300),
    feature="mem_notify",
    params={"suites": SUITES},
    checks=CHECKS,
)

# negative control: a KUnit filter that matches no case of the series, so the
# suite never runs on the patched kernel and the probe must fail
NEG = SCENARIO.negative(
    "neg", "KUnit filter excludes every case: the suite must not be found", ("feature_present",),
    guest=GuestSpec(name="kunit", memory="256M", cpus=2, timeout=300,
                    append=["kunit.enable=1", "kunit.filter_glob=kexp_nonexistent"]))

SCENARIOS = [NEG]
