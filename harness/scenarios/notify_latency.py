"""notify-latency: delay from the first anonymous swap write to each listener's wake-up.

The guest measures everything (trace clock and listener clocks are both
CLOCK_MONOTONIC); the host only aggregates: per listener, the first wake-up in
each run minus that run's reference, then p50/p99 over the runs.
"""

from __future__ import annotations

from pathlib import Path

from ..results import ScenarioResult
from ..scenario import Scenario
from ..vm import GuestSpec

LISTENERS = ("mem_notify", "psi", "vmpressure", "meminfo")


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    k = (len(v) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def latencies(runs_txt: str, listeners_log: str, grace_ns: int = 2_000_000_000) -> dict[str, list[float]]:
    """Per listener, ms from each run's reference to its first wake-up in that run."""
    runs = []
    for line in runs_txt.splitlines():
        f = line.split()
        if len(f) >= 4 and int(f[3]) > 0:
            runs.append((int(f[1]), int(f[2]), int(f[3])))
    wakes: dict[str, list[tuple[int, str]]] = {k: [] for k in LISTENERS}
    for line in listeners_log.splitlines():
        f = line.split(maxsplit=2)
        if len(f) >= 2 and f[0] in wakes:
            wakes[f[0]].append((int(f[1]), f[2] if len(f) > 2 else ""))
    out: dict[str, list[float]] = {k: [] for k in LISTENERS}
    for t0, t1, ref in runs:
        for name, ws in wakes.items():
            cand = [t for t, d in ws if t0 <= t <= t1 + grace_ns
                    and (name != "mem_notify" or d.startswith("kind=1 "))]
            if cand:
                out[name].append((min(cand) - ref) / 1e6)
    return out


def evaluate(res: ScenarioResult, rundir: Path, kernel) -> None:
    rt, ll = rundir / "runs.txt", rundir / "listeners.log"
    if not (rt.is_file() and ll.is_file()):
        return
    lat = latencies(rt.read_text(), ll.read_text())
    nruns = len([x for x in rt.read_text().splitlines() if x.strip()])
    table = {}
    for name, vals in lat.items():
        table[name] = {"runs": nruns, "heard": len(vals),
                       "p50_ms": round(percentile(vals, 50), 3) if vals else None,
                       "p99_ms": round(percentile(vals, 99), 3) if vals else None,
                       "samples_ms": [round(v, 3) for v in vals]}
    res.metrics["latency"] = table
    res.metrics["plots"] = {"p99 delay after first anon swap write": {
        "unit": "ms", "values": [(k, v["p99_ms"]) for k, v in table.items() if v["p99_ms"] is not None]}}


SCENARIO = Scenario(
    name="notify-latency",
    description="mem_notify vs PSI, vmpressure, meminfo poller: delay after swap onset",
    guest=GuestSpec(name="latency", memory="512M", cpus=2, timeout=900),
    disks={"swap.img": "1G"},
    feature="mem_notify",
    params={"runs": 5, "hog_mb": 640, "clear_ms": 500},
    evaluate=evaluate,
)
