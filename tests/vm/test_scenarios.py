"""One test per scenario and kernel.

patched:  the scenario must PASS.
baseline: a scenario with no new feature must PASS too; a feature scenario must
          report the feature missing (proves its checks are not vacuous).
"""

import pytest

from harness.scenarios import all_scenarios

from .conftest import run_scenario

CI = {n: s for n, s in all_scenarios().items() if s.ci}


def _explain(res):
    lines = [f"{res.scenario}[{res.kernel}] outcome {res.outcome} ({res.rundir})"]
    for c in res.checks:
        if c.status != "PASS":
            lines.append(f"  {c.status} {c.name}: " + " | ".join(c.diagnostics))
    for s in res.splats:
        lines.append(f"  splat {s['kind']}: {s['line']}")
    return "\n".join(lines)


@pytest.mark.parametrize("name", sorted(CI))
def test_patched(name, patched_kernel, run_top):
    res = run_scenario(CI[name], patched_kernel, run_top)
    assert res.outcome in ("PASS", "SKIP"), _explain(res)


@pytest.mark.parametrize("name", sorted(CI))
def test_baseline(name, baseline_kernel, run_top):
    scn = CI[name]
    res = run_scenario(scn, baseline_kernel, run_top)
    if scn.feature:
        assert res.feature_missing, "feature checks did not report the feature missing on the " \
                                    "unpatched kernel:\n" + _explain(res)
        assert not res.splats, _explain(res)
    else:
        assert res.outcome in ("PASS", "SKIP"), _explain(res)
