"""swap-cost: run time of a swap-heavy workload, for the idle-hook cost ratio
(patched kernel with nobody listening vs the baseline kernel).  Benchmark only."""

from __future__ import annotations

import statistics
from pathlib import Path

from ..results import ScenarioResult
from ..scenario import Scenario
from ..vm import GuestSpec


def evaluate(res: ScenarioResult, rundir: Path, kernel) -> None:
    f = rundir / "cost.txt"
    if f.is_file():
        secs = [int(ln.split()[1]) / 1e9 for ln in f.read_text().splitlines() if ln.strip()]
        if secs:
            res.metrics["seconds"] = secs
            res.metrics["median_s"] = statistics.median(secs)


SCENARIO = Scenario(
    name="swap-cost",
    description="swap-heavy workload run time (idle mem_notify hook cost; bench only)",
    guest=GuestSpec(name="cost", memory="384M", cpus=2, timeout=1200),
    disks={"swap.img": "1G"},
    params={"reps": 5, "hog_mb": 512, "passes": 2},
    evaluate=evaluate,
    ci=False,
)
