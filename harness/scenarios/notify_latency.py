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


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    v = sorted(values)
    k = (len(v) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def parse_runs(runs_txt: str) -> list[tuple[int, int, int]]:
    runs = []
    for line in runs_txt.splitlines():
        f = line.split()
        if len(f) >= 4 and int(f[3]) > 0:
            runs.append((int(f[1]), int(f[2]), int(f[3])))
    return runs


def parse_wakes(listeners_log: str) -> dict[str, list[tuple[int, dict]]]:
    wakes: dict[str, list[tuple[int, dict]]] = {}
    for line in listeners_log.splitlines():
        f = line.split()
        if len(f) < 2 or f[0] == "#":
            continue
        kv = dict(x.split("=", 1) for x in f[2:] if "=" in x)
        wakes.setdefault(f[0], []).append((int(f[1]), kv))
    return wakes


def latencies(runs_txt: str, listeners_log: str, grace_ns: int = 2_000_000_000) -> dict[str, dict]:
    """Per listener and run, in ms relative to the run's first anonymous swap write.

    mem_notify: ``delay`` = when the SWAP event was read (signed: negative means
    it was heard before the first write was even issued), ``delivery`` = read
    time minus the kernel's own event stamp.  Peers: ``delay`` = first wake-up
    at or after the reference, ``early`` = wake-ups in the run before it (they
    fire on reclaim in general, not on swapping).
    """
    runs = parse_runs(runs_txt)
    out: dict[str, dict] = {}
    for name, ws in parse_wakes(listeners_log).items():
        d: dict = {"delay": [], "early": 0, "delivery": []}
        for t0, t1, ref in runs:
            inrun = [(t, kv) for t, kv in ws if t0 <= t <= t1 + grace_ns]
            if name == "mem_notify":
                sw = [(t, kv) for t, kv in inrun if kv.get("kind") == "1"]
                if sw:
                    t, kv = sw[0]
                    d["delay"].append((t - ref) / 1e6)
                    d["delivery"].append((t - int(kv.get("kts", t))) / 1e6)
            else:
                after = [t for t, _ in inrun if t >= ref]
                d["early"] += len([t for t, _ in inrun if t < ref])
                if after:
                    d["delay"].append((after[0] - ref) / 1e6)
        out[name] = d
    return out


def evaluate(res: ScenarioResult, rundir: Path, kernel) -> None:
    rt, ll = rundir / "runs.txt", rundir / "listeners.log"
    if not (rt.is_file() and ll.is_file()):
        return
    lat = latencies(rt.read_text(), ll.read_text())
    nruns = len(parse_runs(rt.read_text()))
    table = {}
    for name, d in sorted(lat.items(), key=lambda kv: (kv[0] != "mem_notify", kv[0])):
        vals = d["delay"]
        row = {"runs": nruns, "heard": len(vals), "early_wakeups": d["early"],
               "p50_ms": round(percentile(vals, 50), 3) if vals else None,
               "p99_ms": round(percentile(vals, 99), 3) if vals else None,
               "samples_ms": [round(v, 3) for v in vals]}
        if d["delivery"]:
            row["delivery_p50_ms"] = round(percentile(d["delivery"], 50), 3)
            row["delivery_p99_ms"] = round(percentile(d["delivery"], 99), 3)
        table[name] = row
    res.metrics["latency"] = table
    res.metrics["plots"] = {"p99 delay after the first anonymous swap write": {
        "unit": "ms", "values": [(k, v["p99_ms"]) for k, v in table.items() if v["p99_ms"] is not None]}}


SCENARIO = Scenario(
    name="notify-latency",
    description="mem_notify vs PSI, vmpressure, meminfo poller: delay after swap onset",
    guest=GuestSpec(name="latency", memory="512M", cpus=2, timeout=900),
    disks={"swap.img": "1G"},
    feature="mem_notify",
    params={"runs": 5, "hog_mb": 640, "clear_ms": 500, "onset_tolerance_ms": 5,
            # PSI accepts any window from 1 us, but windows under ~10 jiffies
            # (poll period win/10 below one jiffy) never fire and silence every
            # other trigger of the group too (measured at HZ=250): use the
            # smallest that works, and two wider ones
            "psi_windows_us": [50000, 100000, 500000]},
    evaluate=evaluate,
)
