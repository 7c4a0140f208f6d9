"""herd: bounded wakeups of many /dev/mem_notify readers (poll and epoll)."""

from __future__ import annotations

from pathlib import Path

from ..results import ScenarioResult
from ..scenario import Scenario
from ..vm import GuestSpec


def evaluate(res: ScenarioResult, rundir: Path, kernel) -> None:
    rounds = rundir / "rounds.txt"
    herd = rundir / "herd.log"
    if rounds.is_file():
        rows = [ln.split() for ln in rounds.read_text().splitlines() if ln.strip()]
        res.metrics["rounds"] = len(rows)
        res.metrics["max_woken_per_round"] = max((int(r[2]) for r in rows), default=0)
    if herd.is_file():
        d = sorted((int(f[2]) - int(f[5])) / 1e6 for f in
                   (ln.split() for ln in herd.read_text().splitlines() if not ln.startswith("#")))
        if d:
            res.metrics["delay_ms"] = {"min": round(d[0], 2), "p50": round(d[len(d) // 2], 2),
                                       "max": round(d[-1], 2), "readers": len(d)}


SCENARIO = Scenario(
    name="herd",
    description="1024 poll/epoll readers: no round wakes more than the batch; all told in time",
    guest=GuestSpec(name="herd", memory="512M", cpus=2, timeout=900),
    disks={"swap.img": "1G"},
    feature="mem_notify",
    params={"readers": 1024, "batch": 32, "interval_ms": 1, "hog_mb": 600, "slack_ms": 2000},
    evaluate=evaluate,
)
