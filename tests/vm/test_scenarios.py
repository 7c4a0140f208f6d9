"""One test per scenario and kernel, and the negative controls.

patched:  the scenario must PASS (SKIP only outside strict mode).
baseline: a scenario with no new feature must PASS too; a feature scenario
          must be XFAIL: the feature absent, every check that does not need it
          passed (proves the feature checks are not vacuous).
negative: a variant set up so that named checks must fail; they must FAIL.
Checks a scenario records without asserting yet (``Scenario.recorded``) may
be XFAIL on either kernel; every other check must still pass.
"""

import pytest

from harness.scenarios import all_scenarios

from .conftest import explain, run_scenario

ALL = all_scenarios()
CI = {n: s for n, s in ALL.items() if s.ci}
NEG = {n: s for n, s in ALL.items() if s.expect_outcome}


@pytest.fixture
def patched_result(request, patched_kernel, run_top):
    return run_scenario(CI[request.param], patched_kernel, run_top)


@pytest.fixture
def baseline_result(request, baseline_kernel, run_top):
    return run_scenario(CI[request.param], baseline_kernel, run_top)


@pytest.fixture
def negative_result(request, patched_kernel, run_top):
    return run_scenario(NEG[request.param], patched_kernel, run_top)


def _only_recorded_xfail(res) -> bool:
    rec = set(ALL[res.scenario].recorded)
    return res.outcome == "XFAIL" and all(c.name in rec for c in res.checks if c.status == "XFAIL")


@pytest.mark.parametrize("patched_result", sorted(CI), indirect=True)
def test_patched(patched_result):
    assert patched_result.outcome in ("PASS", "SKIP") or _only_recorded_xfail(patched_result), \
        explain(patched_result)


@pytest.mark.parametrize("baseline_result", sorted(CI), indirect=True)
def test_baseline(baseline_result):
    res = baseline_result
    want = "XFAIL" if CI[res.scenario].feature else "PASS"
    assert res.outcome == want or (not CI[res.scenario].feature and _only_recorded_xfail(res)), \
        f"expected {want}:\n" + explain(res)


@pytest.mark.parametrize("negative_result", sorted(NEG), indirect=True)
def test_negative_control(negative_result):
    """The named checks must fail (each can fail for real), with the outcome
    the control expects (FAIL, or CRASH for a kernel made to panic)."""
    res = negative_result
    scn = NEG[res.scenario]
    st = {c.name: c.status for c in res.checks}
    missed = [n for n in scn.expect_fail if st.get(n) != "FAIL"]
    assert not missed, f"negative control {res.scenario}: {missed} did not fail\n" + explain(res)
    assert res.outcome == scn.expect_outcome, f"expected {scn.expect_outcome}\n" + explain(res)
