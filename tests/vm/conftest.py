"""VM tests: each scenario boots the built kernel in QEMU.

Kernels are built by `make test` before pytest runs (so build progress is
visible); here they are loaded, or built if missing.  A scenario that could not
produce a verdict (build failure, boot failure, lost guest, timeout) raises in
the fixture, so pytest reports an ERROR, never a FAIL.  A harness run record
(results.json, junit.xml, report.html) is written for the whole session.
"""

from __future__ import annotations

import os

import pytest

from harness import kernel, results, scenario
from harness.paths import runs_dir
from harness.printer import log

_RESULTS: list[results.ScenarioResult] = []
_KERNELS: dict[str, dict] = {}


def _get_kernel(kind: str) -> kernel.Kernel:
    ksrc = os.environ.get("KSRC") or None
    # make test built it already; an up-to-date tree "rebuilds" in seconds and a
    # stale or missing one is (re)built here, so pytest alone also works.
    k = kernel.build(kind, ksrc=ksrc)
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
        results.write_json(rec, top / "results.json")
        results.write_junit(rec, top / "junit.xml")
        results.write_html(rec, top / "report.html")
        txt = results.table(_RESULTS)
        (top / "report.txt").write_text(txt + "\n")
        log("report", f"\n{txt}\nresults: {top}/results.json")


def run_scenario(scn: scenario.Scenario, k: kernel.Kernel, top) -> results.ScenarioResult:
    res = scenario.run(scn, k, top / scn.name / k.kind)
    _RESULTS.append(res)
    if res.outcome == "ERROR":
        raise RuntimeError(f"infrastructure error in {scn.name}[{k.kind}]: {res.error}")
    return res
