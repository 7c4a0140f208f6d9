"""notify-latency: delay from the first anonymous swap write to each listener's wake-up.

The guest measures everything (trace clock and listener clocks are both
CLOCK_MONOTONIC); the host only aggregates: per listener, the first wake-up in
each run minus that run's reference, then p50/p99 over the runs.
"""

from __future__ import annotations

from pathlib import Path

from .. import checks as ck
from ..checks import CheckDef, Judging
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


def listener_setup(stdout: str) -> dict[str, str]:
    """``mnlisten: setup NAME ok|failed why`` lines -> {name: "ok" | "failed why"}."""
    out = {}
    for line in stdout.splitlines():
        f = line.split(None, 3)
        if len(f) >= 4 and f[:2] == ["mnlisten:", "setup"]:
            out[f[2]] = f[3]
    return out


def j_present(j: Judging) -> ck.Verdict:
    return ck.verdict(j.m.get("is_char") == "1", j.m.get("node", ""), "a character device")


def j_listeners(j: Judging) -> ck.Verdict:
    want = j.m.get("requested", "").split()
    got = listener_setup(j.m.get("stdout", ""))
    ready = "mnlisten: ready" in j.m.get("stdout", "")
    bad = [f"{n}: {got.get(n, 'never reported')}" for n in want if got.get(n) != "ok"]
    if not bad and ready and "vmpressure" not in want:
        return ck.skip(f"peer vmpressure unavailable: v1 memory controller "
                       f"{j.m.get('memcg_v1', '?')}; the others armed: {' '.join(want)}")
    return ck.verdict(ready and j.m.get("alive") == "1" and j.m.get("exit_rc") == "0" and not bad,
                      ("; ".join(bad) or f"all armed: {' '.join(want)}")
                      + ("" if ready else "; mnlisten never said ready")
                      + ("" if j.m.get("alive") == "1" else "; mnlisten died during setup"),
                      "every requested listener armed before the first hog, still running after it",
                      armed=sum(1 for n in want if got.get(n) == "ok"), requested=len(want))


def j_reference(j: Judging) -> ck.Verdict:
    rows = [ln.split() for ln in j.text(j.m.get("runs", "")).splitlines() if ln.strip()]
    nref = sum(1 for r in rows if len(r) >= 4 and int(r[3]) > 0)
    want = j.params["runs"]
    return ck.verdict(j.int("trace_setup_rc") == 0 and len(rows) == want and nref == want,
                      f"runs with an anonymous swap write traced: {nref}/{want} "
                      f"(trace setup rc={j.m.get('trace_setup_rc')})",
                      f"{want}/{want} runs", traced=nref, runs=len(rows))


def swap_events(runs_txt: str, listeners_log: str) -> list[dict]:
    """Per run: the first SWAP (kind 1) record read while the hog ran."""
    rows = [ln.split() for ln in runs_txt.splitlines() if ln.strip()]
    wakes = parse_wakes(listeners_log).get("mem_notify", [])
    out = []
    for r in rows:
        t0, t1, ref = int(r[1]), int(r[2]), int(r[3])
        sw = [(t, kv) for t, kv in wakes if t0 <= t <= t1 and kv.get("kind") == "1"]
        ev = {"run": int(r[0]), "t0": t0, "t1": t1, "ref": ref}
        if sw:
            ev["read"], ev["kts"] = sw[0][0], int(sw[0][1].get("kts", 0))
        out.append(ev)
    return out


def j_swap_event(j: Judging) -> ck.Verdict:
    """Every run's SWAP event: read during the hog, after its own stamp; the
    stamp no earlier than the hog's start nor ``onset_lead_ms`` before the first
    traced write (the decision to swap precedes its write within one reclaim
    pass), and no later than ``onset_tolerance_ms`` after it."""
    tol, lead = j.params["onset_tolerance_ms"], j.params["onset_lead_ms"]
    evs = swap_events(j.text(j.m.get("runs", "")), j.text(j.m.get("listeners", "")))
    bad, notes, stamp_ms = [], [], []
    for e in evs:
        if "read" not in e:
            bad.append(f"run {e['run']}: no SWAP event read during the hog")
            continue
        if e["ref"] <= 0:
            bad.append(f"run {e['run']}: no traced swap write to compare with")
            continue
        s = (e["kts"] - e["ref"]) / 1e6
        r = (e["read"] - e["ref"]) / 1e6
        stamp_ms.append(round(s, 3))
        notes.append(f"run {e['run']}: stamped {s:+.3f} ms, read {r:+.3f} ms")
        if e["kts"] < e["t0"]:
            bad.append(f"run {e['run']}: stamped before the hog started")
        elif s > tol:
            bad.append(f"run {e['run']}: stamped {s:+.3f} ms after the first write (> {tol} ms)")
        elif s < -lead:
            bad.append(f"run {e['run']}: stamped {-s:.3f} ms before the first write (> {lead} ms)")
        if e["read"] < e["kts"]:
            bad.append(f"run {e['run']}: read before its own stamp")
    return ck.verdict(bool(evs) and not bad, "; ".join(bad + notes),
                      f"-{lead} ms <= stamp - first write <= +{tol} ms; read after stamp, during the hog",
                      stamp_minus_first_write_ms=stamp_ms, runs=len(evs))


def j_clear(j: Judging) -> ck.Verdict:
    """A CLEAR (kind 4) after each run's SWAP, before the next run, within
    clear_ms plus the time the hog still ran."""
    rows = [ln.split() for ln in j.text(j.m.get("runs", "")).splitlines() if ln.strip()]
    wakes = parse_wakes(j.text(j.m.get("listeners", ""))).get("mem_notify", [])
    bad, notes = [], []
    for i, r in enumerate(rows):
        t0 = int(r[1])
        lim = int(rows[i + 1][1]) if i + 1 < len(rows) else 1 << 63
        sw = [t for t, kv in wakes if t0 <= t < lim and kv.get("kind") == "1"]
        cl = [t for t, kv in wakes if sw and sw[0] < t < lim and kv.get("kind") == "4"]
        if not sw:
            bad.append(f"run {r[0]}: no SWAP")
        elif not cl:
            bad.append(f"run {r[0]}: no CLEAR after its SWAP")
        else:
            notes.append(f"run {r[0]}: CLEAR {(cl[0] - sw[0]) / 1e6:.0f} ms after SWAP")
    return ck.verdict(bool(rows) and not bad, "; ".join(bad + notes),
                      "one CLEAR after every SWAP, before the next run", runs=len(rows))


CHECKS = (
    ck.feature_probe("/dev/mem_notify exists", j_present),
    CheckDef("listeners_started", "every listener (mem_notify where present, each PSI window, "
             "vmpressure, meminfo poller) reported itself armed before the first hog", j_listeners),
    CheckDef("swap_reference", "each run's hog made the kernel write anonymous pages to swap "
             "(traced vmscan:mm_vmscan_write_folio)", j_reference),
    CheckDef("swap_event_in_window", "each run's SWAP event: stamped between onset_lead_ms "
             "before and onset_tolerance_ms after the first traced write, read during the hog",
             j_swap_event, needs_feature=True),
    CheckDef("clear_event", "a CLEAR follows every run's SWAP before the next run",
             j_clear, needs_feature=True),
)


def evaluate(res: ScenarioResult, rundir: Path, kind: str) -> None:
    rt, ll = rundir / "runs.txt", rundir / "listeners.log"
    if not (rt.is_file() and ll.is_file()):
        return
    lat = latencies(rt.read_text(), ll.read_text())
    nruns = len(parse_runs(rt.read_text()))
    setup = listener_setup((rundir / "mnlisten.out").read_text(errors="replace")
                           if (rundir / "mnlisten.out").is_file() else "")
    table = {}
    for name in sorted(set(lat) | {n for n, v in setup.items() if v == "ok"},
                       key=lambda n: (n != "mem_notify", n)):
        d = lat.get(name, {"delay": [], "early": 0, "delivery": []})
        vals = d["delay"]
        table[name] = {"runs": nruns, "heard": len(vals), "early_wakeups": d["early"],
                       "samples_ms": [round(v, 3) for v in vals],
                       "delivery_ms": [round(v, 3) for v in d["delivery"]]}
    res.metrics["latency"] = table
    res.metrics["plots"] = {
        "delay from the first anonymous swap write to each listener's wake-up (CDF over runs)": {
            "type": "cdf", "unit": "ms", "series": {k: v["samples_ms"] for k, v in table.items()}},
        "median delay per listener (none = never woke)": {
            "type": "bar", "unit": "ms",
            "values": [[k, percentile(v["samples_ms"], 50) if v["samples_ms"] else None]
                       for k, v in table.items()]}}


SCENARIO = Scenario(
    name="notify-latency",
    description="mem_notify vs PSI, vmpressure, meminfo poller: delay after swap onset",
    guest=GuestSpec(name="latency", memory="512M", cpus=2, timeout=900),
    disks={"swap.img": "1G"},
    feature="mem_notify",
    params={"runs": 3, "hog_mb": 640, "clear_ms": 500, "onset_tolerance_ms": 5,
            "onset_lead_ms": 50,
            # PSI accepts any window from 1 us, but windows under ~10 jiffies
            # (poll period win/10 below one jiffy) never fire and silence every
            # other trigger of the group too (measured at HZ=250): use the
            # smallest that works, and two wider ones
            "psi_windows_us": [50000, 100000, 500000]},
    evaluate=evaluate,
    checks=CHECKS,
)

# negative control: a hog that fits in memory never swaps, so there is no
# reference write and no SWAP event to find
SCENARIOS = [SCENARIO.negative("neg", "a hog that fits in RAM: no swap write, no SWAP event",
                               ("swap_reference", "swap_event_in_window"), runs=1, hog_mb=64)]
