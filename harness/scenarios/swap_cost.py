"""swap-cost: run time of a swap-heavy workload, for the idle-hook cost
(the patched kernel with nobody listening vs the baseline kernel).  Benchmark only."""

from __future__ import annotations

import statistics
from pathlib import Path

from .. import checks as ck
from ..checks import CheckDef, Judging
from ..results import ScenarioResult
from ..scenario import Scenario
from ..vm import GuestSpec


def parse_cost(text: str) -> list[tuple[float, int]]:
    out = []
    for ln in text.splitlines():
        f = ln.split()
        if len(f) >= 2:
            out.append((int(f[1]) / 1e9, int(f[2]) if len(f) > 2 else 0))
    return out


def j_workload(j: Judging) -> ck.Verdict:
    b, a = j.int("pswpout_before"), j.int("pswpout_after")
    return ck.verdict(a is not None and b is not None and a > b and j.int("hog_failures") == 0,
                      f"pswpout {b} -> {a}; failed reps {j.m.get('hog_failures')}",
                      "swaps, every rep completes")


def j_timings(j: Judging) -> ck.Verdict:
    rows = parse_cost(j.text(j.m.get("file", "")))
    return ck.verdict(len(rows) == j.params["reps"], " ".join(f"{s:.2f}s" for s, _ in rows),
                      f"{j.params['reps']} reps timed")


CHECKS = (
    CheckDef("swap_workload", "the workload swaps and every repetition completes", j_workload),
    CheckDef("timings_recorded", "one timing per repetition", j_timings),
)


def evaluate(res: ScenarioResult, rundir: Path, kind: str) -> None:
    f = rundir / "cost.txt"
    if f.is_file():
        rows = parse_cost(f.read_text())
        if rows:
            res.metrics["seconds"] = [s for s, _ in rows]
            res.metrics["pswpout"] = [p for _, p in rows]
            res.metrics["median_s"] = statistics.median(s for s, _ in rows)


SCENARIO = Scenario(
    name="swap-cost",
    description="swap-heavy workload run time (idle mem_notify hook cost; bench only)",
    guest=GuestSpec(name="cost", memory="384M", cpus=2, timeout=1200),
    disks={"swap.img": "1G"},
    params={"reps": 5, "hog_mb": 512, "passes": 2},
    evaluate=evaluate,
    checks=CHECKS,
    ci=False,
)
