"""make bench: patched vs baseline vs peers, as ratios from one run.

* notify latency: p50/p99 delay from the first anonymous swap write to each
  listener's wake-up (mem_notify, PSI trigger, v1 vmpressure, meminfo poller),
  and each peer's p99 as a multiple of mem_notify's;
* herd: rounds, most files released in one round, delay of the last reader;
* idle hook: a swap-heavy workload's median run time on the patched kernel
  (nobody listening) over the baseline kernel, boots interleaved P,B,P,B;
* cpuset: pages a swapping job wrote before it died under swap_kill off,
  task, cpuset and under earlyoom; wake-ups of A's watchers and false alarms
  on the quiet sibling B.

Under TCG absolute times are inflated; the ratios are what count.
"""

from __future__ import annotations

import dataclasses
import json
import statistics

from . import kernel as kmod
from . import results, scenario
from .paths import runs_dir
from .printer import log
from .scenarios import get


def _with(name: str, **params) -> scenario.Scenario:
    s = get(name)
    return dataclasses.replace(s, params={**s.params, **params})


def fmt_table(rows: list[tuple]) -> str:
    w = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    out = ["  ".join(str(v).ljust(w[i]) for i, v in enumerate(r)).rstrip() for r in rows]
    out.insert(1, "  ".join("-" * x for x in w))
    return "\n".join(out)


def latency_table(lat: dict) -> tuple[str, dict]:
    """Rows per listener; the ratio is each peer's p99 over mem_notify's p99.

    mem_notify's delay is signed (negative: read before the first write was
    issued, since the kernel decides to swap before it writes); when its p99
    is not positive the ratio is reported as infinite."""
    mn = lat.get("mem_notify", {}).get("p99_ms")
    rows = [("listener", "heard", "early", "p50 ms", "p99 ms", "p99 / mem_notify p99")]
    ratios: dict = {}
    for name, v in lat.items():
        r = ""
        if name != "mem_notify" and v.get("p99_ms") is not None and mn is not None:
            if mn > 0:
                ratios[name] = round(v["p99_ms"] / mn, 1)
                r = f"{ratios[name]}x"
            else:
                ratios[name] = "inf"
                r = "inf (mem_notify heard before the write)"
        elif name != "mem_notify":
            r = "never woke" if not v.get("heard") else ""
        rows.append((name, f"{v['heard']}/{v['runs']}", v.get("early_wakeups", 0),
                     "-" if v["p50_ms"] is None else f"{v['p50_ms']:.3f}",
                     "-" if v["p99_ms"] is None else f"{v['p99_ms']:.3f}", r))
    mnd = lat.get("mem_notify", {})
    extra = ""
    if "delivery_p99_ms" in mnd:
        extra = (f"\nmem_notify delivery (kernel event stamp -> reader woke): p50 "
                 f"{mnd['delivery_p50_ms']:.3f} ms, p99 {mnd['delivery_p99_ms']:.3f} ms")
    return fmt_table(rows) + extra, ratios


def main(runs: int = 10, reps: int = 5) -> int:
    pk = kmod.build("patched")
    bk = kmod.build("baseline")
    top = runs_dir() / ("bench-" + results.stamp())
    top.mkdir(parents=True)
    out: dict = {"kernel": {"patched": pk.to_dict(), "baseline": bk.to_dict()}}
    all_res = []

    log("bench", f"notify latency over {runs} swap onsets (patched)")
    lr = scenario.run(_with("notify-latency", runs=runs), pk, top / "notify-latency" / "patched")
    all_res.append(lr)
    lat = lr.metrics.get("latency", {})
    ltab, ratios = latency_table(lat) if lat else ("(no latency data: " + lr.outcome + ")", {})
    out["latency"] = {"table": lat, "p99_ratio_to_mem_notify": ratios, "outcome": lr.outcome}

    log("bench", "herd (patched)")
    hr = scenario.run(get("herd"), pk, top / "herd" / "patched")
    all_res.append(hr)
    hp = get("herd").params
    out["herd"] = {"readers": hp["readers"], "batch": hp["batch"], **hr.metrics, "outcome": hr.outcome}
    htab = fmt_table([("readers", "batch", "rounds", "max released/round", "reader delay p50 ms",
                       "max ms"),
                      (hp["readers"], hp["batch"], hr.metrics.get("rounds", "-"),
                       hr.metrics.get("max_woken_per_round", "-"),
                       hr.metrics.get("delay_ms", {}).get("p50", "-"),
                       hr.metrics.get("delay_ms", {}).get("max", "-"))])

    log("bench", "idle-hook cost: swap-heavy workload, patched (nobody listening) vs baseline")
    secs = {"patched": [], "baseline": []}
    for i in range(2):
        for k in (pk, bk):
            r = scenario.run(_with("swap-cost", reps=reps), k, top / "swap-cost" / f"{k.kind}-{i}")
            all_res.append(r)
            secs[k.kind] += r.metrics.get("seconds", [])
    cost = {}
    if secs["patched"] and secs["baseline"]:
        mp, mb = statistics.median(secs["patched"]), statistics.median(secs["baseline"])
        cost = {"patched_median_s": round(mp, 3), "baseline_median_s": round(mb, 3),
                "ratio": round(mp / mb, 4), "samples": secs}
    out["idle_hook"] = cost
    ctab = fmt_table([("kernel", "reps", "median s", "ratio to baseline"),
                      ("patched (no reader)", len(secs["patched"]), cost.get("patched_median_s", "-"),
                       cost.get("ratio", "-")),
                      ("baseline", len(secs["baseline"]), cost.get("baseline_median_s", "-"), "1.0")])

    log("bench", "cpuset: pages written before the job dies, per policy and earlyoom (patched)")
    kr = scenario.run(get("cpuset-swap-kill"), pk, top / "cpuset-swap-kill" / "patched")
    all_res.append(kr)
    pk_pages = kr.metrics.get("pages_before_kill", {})
    out["pages_before_kill"] = {**pk_pages, "outcome": kr.outcome}
    ktab = fmt_table([("policy", "job pages to swap", "all pages to swap", "job killed", "job ran ms")]
                     + [(p, v["pages"], v["all_pages"], "yes" if v["job_killed"] else "no",
                         str(v["seconds"]).rstrip("ms")) for p, v in pk_pages.items()])
    ir = scenario.run(get("cpuset-isolation"), pk, top / "cpuset-isolation" / "patched")
    all_res.append(ir)
    wk = ir.metrics.get("wakeups", {})
    out["cpuset_isolation"] = {**wk, "outcome": ir.outcome}
    itab = fmt_table([("A poll wake-ups", "A inotify events", "B false alarms"),
                      (wk.get("A_poll", "-"), wk.get("A_inotify", "-"), wk.get("B_false_alarms", "-"))])

    text = (f"== notify latency (first anon swap write -> wake-up, {runs} onsets, guest time) ==\n"
            f"{ltab}\n\n== herd ==\n{htab}\n\n== idle hook cost ==\n{ctab}\n\n"
            f"== cpuset swap_kill: pages written before the job died ==\n{ktab}\n\n"
            f"== cpuset isolation: A swaps, B quiet ==\n{itab}\n")
    (top / "bench.txt").write_text(text)
    (top / "bench.json").write_text(json.dumps(out, indent=1, default=str))
    rec = results.RunRecord(top.name, out["kernel"], all_res, "make bench")
    results.write_json(rec, top / "results.json")
    results.write_html(rec, top / "report.html")
    print(text)
    print(f"bench: {top}/bench.json")
    return results.exit_code(all_res)
