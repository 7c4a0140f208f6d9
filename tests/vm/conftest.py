"""VM tests: each scenario boots the built kernel in QEMU.

Kernels are built by `make test` before pytest runs (so build progress is
visible); here they are loaded, or built if missing.  Scenarios run inside
fixtures: an infrastructure error (build, boot, QEMU, the harness's own
timeout or a harness bug: outcome ERROR) raises there, so pytest reports it
as an ERROR, never as a FAILED test.  A harness run record (results.json,
junit.xml, report.txt, report.html) is written for the whole session.
"""

from __future__ import annotations

import os

import pytest

from harness import cli, kernel, results, scenario
from harness.paths import runs_dir
from harness.printer import log

_RESULTS: list[results.ScenarioResult] = []
_KERNELS: dict[str, dict] = {}


class InfrastructureError(Exception):
    """The scenario could not produce a verdict."""


def _get_kernel(kind: str) -> kernel.Kernel:
    ksrc = os.environ.get("KSRC") or None
    # make test built it already; an up-to-date tree "rebuilds" in seconds and a
    # stale or missing one is (re)built here, so pytest alone also works.
    k = kernel.build(kind, ksrc=ksrc, debug=os.environ.get("DEBUG") == "1")
    _KERNELS[kind] = k.to_dict()
    return k


@pytest.fixture(scope="session")
def patched_kernel():
    return _get_kernel("patched")


@pytest.fixture(scope="session")
def baseline_kernel():
    return _get_kernel("baseline")


@pytest.fixture(scope="session")
def run_top():
    top = runs_dir() / ("pytest-" + results.stamp())
    top.mkdir(parents=True, exist_ok=True)
    yield top
    if _RESULTS:
        rec = results.RunRecord(top.name, _KERNELS, list(_RESULTS), "make test (pytest tests/vm)")
        cli.write_all(rec, top)
        log("report", f"results: {top}/results.json")


def run_scenario(scn: scenario.Scenario, k: kernel.Kernel, top) -> results.ScenarioResult:
    """Call from a fixture: ERROR raises, so pytest reports a test error."""
    res = scenario.run(scn, k, top / scn.name / k.kind)
    _RESULTS.append(res)
    if res.outcome == "ERROR":
        raise InfrastructureError(f"infrastructure error in {scn.name}[{k.kind}]: {res.error}")
    return res


def explain(res: results.ScenarioResult) -> str:
    lines = [f"{res.scenario}[{res.kernel}] outcome {res.outcome} ({res.rundir})"]
    if res.crash:
        lines.append(f"  CRASH {res.crash}")
    for c in res.checks:
        if c.status not in ("PASS",):
            lines.append(f"  {c.status} {c.name}: {c.detail}" + (f" [bound: {c.bound}]" if c.bound else ""))
    for s in res.splats:
        lines.append(f"  splat {s['kind']}: {s['line']}")
    return "\n".join(lines)
