"""make bench: patched vs baseline vs peers.

Sections (each can be run alone with ``--only``):

* latency -- delay from the first anonymous swap write to each listener's
  wake-up (mem_notify, PSI triggers, v1 vmpressure, meminfo poller): n, p50,
  p90, max (p99 only from 100 samples on), min and IQR per listener; every
  configured listener has a row, one that never woke says so.  Peers are
  compared with mem_notify by the ratio of p50s, or, when mem_notify's p50 is
  below ``RATIO_FLOOR_MS`` or not positive (it is signed: the kernel decides to
  swap before it writes), by the difference of p50s in ms; the table says which.
* herd -- rounds, most readers released in one round, reader delays.
* cost -- the swap-cost workload's run time on the patched kernel with the
  feature idle (nobody has /dev/mem_notify open, no cpuset exists) and on the
  baseline kernel, plus an A/A comparison: the same baseline kernel in a
  second set of boots.  Boots are interleaved P, B, B', P, B, B' ...  Medians
  with spread; the verdict is ``noise_verdict`` (below).
* insn -- the cost noise does not drown: guest instructions executed in the
  series' functions and in the whole kernel per page swapped out, counted by a
  QEMU TCG plugin (harness/tcgplugin.py, harness/plugins/insncount.c) while
  the swap-cost workload runs, on the patched kernel (a) idle, (b) with a
  /dev/mem_notify reader, (c) with cpusets and a swap_kill policy set, and on
  the baseline kernel (twice: A/A).  One vCPU per counting guest, so that the
  plugin's inline counters are exact.
* cpuset -- pages written to swap before the job died, per swap_kill policy
  and earlyoom, over ``kill_runs`` boots (median, range, runs killed), and
  cpuset isolation wake-ups.

Statistics: ``stats`` is the one helper (n, p50, p90, max, min, spread with
spread = IQR = p75 - p25, linear interpolation between order statistics).
Under TCG absolute times are inflated; comparisons are what count.

Outputs in out/runs/bench-<stamp>/: bench.txt (the tables), bench.json (the
tables and every number behind them), report.html (harness.report's
write_bench_html) and results.json (the scenario runs).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shlex
import subprocess
from pathlib import Path

from . import kernel as kmod
from . import results, scenario
from .paths import runs_dir
from .printer import log
from .scenarios import get

SECTIONS = ("latency", "herd", "cost", "insn", "alloc", "emergpool", "cpuset", "netswap")
RATIO_FLOOR_MS = 1.0  # below this (or <= 0) mem_notify's p50 is no denominator


def _with(name: str, **params) -> scenario.Scenario:
    s = get(name)
    return dataclasses.replace(s, params={**s.params, **params})


# --------------------------------------------------------------------------
# statistics


def percentile(sorted_values: list[float], p: float) -> float:
    """Linear interpolation between order statistics (numpy's default)."""
    v = sorted_values
    k = (len(v) - 1) * p / 100.0
    lo = int(math.floor(k))
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def stats(values) -> dict:
    """n, p50, p90, max, min and spread of ``values`` (None/NaN dropped).

    spread is the interquartile range p75 - p25 (p25 and p75 are included).
    ``p99`` is added only from 100 samples on: below that the p99 of a sample
    is its maximum in all but name, and is reported as ``max``."""
    v = sorted(float(x) for x in values if x is not None and not math.isnan(float(x)))
    n = len(v)
    if not n:
        return {"n": 0, "p50": None, "p90": None, "max": None, "min": None, "spread": None,
                "p25": None, "p75": None}
    out = {"n": n, "p50": percentile(v, 50), "p90": percentile(v, 90), "max": v[-1], "min": v[0],
           "p25": percentile(v, 25), "p75": percentile(v, 75)}
    out["spread"] = out["p75"] - out["p25"]
    if n >= 100:
        out["p99"] = percentile(v, 99)
    return out


def fmt(x, digits: int = 3) -> str:
    if x is None:
        return "-"
    if isinstance(x, float) and math.isnan(x):
        return "-"
    if isinstance(x, int) or (isinstance(x, float) and x.is_integer() and abs(x) >= 1e4):
        return f"{int(x)}"
    return f"{x:.{digits}f}"


def compare_to_ref(peer_p50: float | None, ref_p50: float | None,
                   floor: float = RATIO_FLOOR_MS) -> dict:
    """How a peer's p50 compares with mem_notify's.

    A ratio ``peer / ref`` when ref >= ``floor`` (ms); otherwise (a
    sub-millisecond or non-positive ref, a meaningless denominator) the
    difference ``peer - ref`` in ms.  Returns kind ("ratio", "difference",
    "none"), value and the text for the table."""
    if peer_p50 is None:
        return {"kind": "none", "value": None, "text": "never woke"}
    if ref_p50 is None:
        return {"kind": "none", "value": None, "text": "mem_notify never woke"}
    if ref_p50 >= floor:
        r = peer_p50 / ref_p50
        return {"kind": "ratio", "value": round(r, 2), "text": f"{r:.1f}x"}
    d = peer_p50 - ref_p50
    return {"kind": "difference", "value": round(d, 3), "text": f"{d:+.1f} ms"}


def noise_verdict(patched, baseline, baseline_aa=None, unit: str = "s",
                  words: tuple[str, str] = ("slower", "faster")) -> dict:
    """Is patched - baseline (difference of medians) above the noise floor?

    noise floor = max(|A/A difference|, combined spread), where the A/A
    difference is median(baseline_aa) - median(baseline) (the same kernel in
    two sets of boots) and the combined spread is the mean of the two samples'
    IQRs, (IQR(patched) + IQR(baseline)) / 2: a difference of medians within
    the typical interquartile scatter of one sample is not told apart from
    noise.  Verdict: "below the noise floor" when |difference| <= floor, else
    "above the noise floor: patched <slower|faster> by ..."."""
    sp, sb = stats(patched), stats(baseline)
    sa = stats(baseline_aa or [])
    out = {"patched": sp, "baseline": sb, "baseline_aa": sa, "unit": unit}
    if not sp["n"] or not sb["n"]:
        out.update(difference=None, aa_difference=None, combined_spread=None, floor=None,
                   percent=None, verdict="not measured")
        return out
    diff = sp["p50"] - sb["p50"]
    aa = sa["p50"] - sb["p50"] if sa["n"] else None
    comb = (sp["spread"] + sb["spread"]) / 2
    floor = max(abs(aa) if aa is not None else 0.0, comb)
    pct = 100.0 * diff / sb["p50"] if sb["p50"] else None
    if abs(diff) <= floor:
        verdict = "below the noise floor"
    else:
        verdict = (f"above the noise floor: patched {words[0] if diff > 0 else words[1]} by "
                   f"{abs(diff):.4g} {unit}" + (f" ({pct:+.2f}%)" if pct is not None else ""))
    if aa is None:
        verdict += " (no A/A boots: combined spread only)"
    out.update(difference=diff, aa_difference=aa, combined_spread=comb, floor=floor,
               percent=pct, verdict=verdict)
    return out


# --------------------------------------------------------------------------
# tables


def table(title: str, columns: list[str], rows: list[list], note: str = "") -> dict:
    return {"title": title, "columns": list(columns),
            "rows": [["-" if c is None else c for c in r] for r in rows], "note": note}


def fmt_table(rows: list) -> str:
    w = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    out = ["  ".join(str(v).ljust(w[i]) for i, v in enumerate(r)).rstrip() for r in rows]
    out.insert(1, "  ".join("-" * x for x in w))
    return "\n".join(out)


def render(t: dict) -> str:
    body = fmt_table([t["columns"], *t["rows"]]) if t["rows"] else "(no data)"
    return f"== {t['title']} ==\n{body}" + (f"\n{t['note']}" if t["note"] else "")


# --------------------------------------------------------------------------
# latency


def configured_listeners(params: dict, observed) -> list[str]:
    """Listeners the notify-latency guest starts, in table order, plus any
    other observed one.  PSI names follow the observed style (psi-50ms or
    psi_50000us) so a listener does not get two rows."""
    observed = list(observed)
    us = "psi_" if any(n.startswith("psi_") for n in observed) else "psi-"
    psi = [f"psi_{w}us" if us == "psi_" else f"psi-{int(w) // 1000}ms"
           for w in params.get("psi_windows_us", [])]
    names = ["mem_notify", *psi, "vmpressure", "meminfo"]
    return names + [n for n in observed if n not in names]


def latency_section(lat: dict, params: dict, setup: dict | None = None) -> tuple[dict, dict, dict]:
    """(table, data, plot) of the notify-latency metrics, from samples.

    ``setup`` ({listener: "ok" | "failed why"}, from the guest's mnlisten
    output) tells a listener that never woke from one that never started."""
    setup = setup or {}
    runs = max([v.get("runs", 0) for v in lat.values()] + [params.get("runs", 0)])
    names = configured_listeners(params, lat)
    st = {n: stats(lat.get(n, {}).get("samples_ms", [])) for n in names}
    tail = "p99" if all(s["n"] >= 100 for s in st.values() if s["n"]) and any(
        s["n"] for s in st.values()) else "max"
    ref = st["mem_notify"]["p50"]
    kind = "difference" if ref is not None and ref < RATIO_FLOOR_MS else "ratio"
    rows, data = [], {}
    for n in names:
        v, s = lat.get(n, {}), st[n]
        heard = v.get("heard", s["n"])
        nruns = v.get("runs", runs)
        cmp = {"kind": "none", "value": None, "text": ""} if n == "mem_notify" else \
            compare_to_ref(s["p50"], ref)
        if s["n"]:
            woke = f"{heard}/{nruns}"
        elif setup and setup.get(n, "") != "ok" and n not in lat:
            woke = f"not started ({setup.get(n, 'not requested')[:40]})"
            cmp = {"kind": "none", "value": None, "text": "not started"}
        else:
            woke = f"never woke (0/{nruns})"
        rows.append([n, woke, v.get("early_wakeups", "-"), s["n"], fmt(s["p50"]), fmt(s["p90"]),
                     fmt(s.get(tail)), fmt(s["min"]), fmt(s["spread"]), cmp["text"]])
        data[n] = {"runs": nruns, "heard": heard, "early_wakeups": v.get("early_wakeups"),
                   "stats_ms": s, "vs_mem_notify": cmp, "samples_ms": v.get("samples_ms", [])}
        if v.get("delivery_ms"):
            data[n]["delivery_stats_ms"] = stats(v["delivery_ms"])
    how = (f"difference of p50s (peer - mem_notify, ms), because mem_notify's p50 "
           f"({fmt(ref)} ms) is below {RATIO_FLOOR_MS:g} ms or not positive" if kind == "difference"
           else f"ratio of p50s (peer / mem_notify; mem_notify's p50 {fmt(ref)} ms)"
           if ref is not None else "none (mem_notify never woke)")
    note = [f"vs mem_notify: {how}.",
            f"{tail}: " + ("the 99th percentile" if tail == "p99" else
                           "the largest sample (under 100 samples a p99 is the max)") + "; "
            "IQR = p75 - p25; mem_notify's delay is signed (negative: heard before the first write).",
            "early = wake-ups during a run before its first swap write."]
    d = data.get("mem_notify", {}).get("delivery_stats_ms")
    if d and d["n"]:
        note.append(f"mem_notify delivery (kernel event stamp -> reader woke): n={d['n']}, "
                    f"p50 {fmt(d['p50'])} ms, p90 {fmt(d['p90'])} ms, max {fmt(d['max'])} ms")
    t = table(f"notify latency: first anon swap write -> wake-up ({runs} onsets, guest ms)",
              ["listener", "woke", "early", "n", "p50 ms", "p90 ms", f"{tail} ms", "min ms",
               "IQR ms", "vs mem_notify (p50)"], rows, "\n".join(note))
    plot = {"type": "cdf", "unit": "ms",
            "series": {n: data[n]["samples_ms"] for n in names if data[n]["samples_ms"]}}
    return t, {"listeners": data, "comparison": kind, "ratio_floor_ms": RATIO_FLOOR_MS}, plot


# --------------------------------------------------------------------------
# idle-hook cost in run time


COST_LABELS = {"patched": "patched (feature idle)", "baseline": "baseline",
               "baseline_aa": "baseline again (A/A)"}


def cost_section(secs: dict[str, list[float]], boots: dict[str, int]) -> tuple[dict, dict]:
    v = noise_verdict(secs.get("patched", []), secs.get("baseline", []),
                      secs.get("baseline_aa", []), unit="s")
    base = v["baseline"]["p50"]
    rows = []
    for k in ("patched", "baseline", "baseline_aa"):
        s = stats(secs.get(k, []))
        d = s["p50"] - base if s["p50"] is not None and base is not None else None
        rows.append([COST_LABELS[k], boots.get(k, 0), s["n"], fmt(s["p50"]), fmt(s["p90"]),
                     fmt(s["min"]), fmt(s["max"]), fmt(s["spread"]),
                     "" if k == "baseline" else fmt(d, 4),
                     "" if k == "baseline" or d is None or not base else f"{100 * d / base:+.2f}%"])
    note = (f"verdict: {v['verdict']}.  patched - baseline = {fmt(v['difference'], 4)} s; "
            f"A/A (baseline again - baseline) = {fmt(v['aa_difference'], 4)} s; combined spread "
            f"(IQR(patched) + IQR(baseline)) / 2 = {fmt(v['combined_spread'], 4)} s; noise floor = "
            f"max(|A/A|, combined spread) = {fmt(v['floor'], 4)} s.\n"
            "Boots interleaved P, B, B', P, B, B' ...; the feature idle: nobody has "
            "/dev/mem_notify open and no cpuset exists (static keys off).")
    t = table("idle-hook cost: swap-cost workload run time (guest s)",
              ["kernel", "boots", "n", "median s", "p90 s", "min s", "max s", "IQR s",
               "median - baseline s", "%"], rows, note)
    return t, {"samples_s": secs, "boots": boots, **v}


# --------------------------------------------------------------------------
# cpuset swap_kill over several boots


def _ms(v) -> float | None:
    m = re.match(r"\s*(-?\d+(?:\.\d+)?)", str(v or ""))
    return float(m.group(1)) if m else None


def kill_summary(runs: list[dict]) -> dict:
    """Per policy over boots: ``runs`` is one pages_before_kill dict per boot."""
    pol: dict[str, dict] = {}
    for r in runs:
        for p, v in r.items():
            if not isinstance(v, dict):
                continue
            d = pol.setdefault(p, {"pages": [], "all_pages": [], "anon_writes": [], "killed": 0,
                                   "ms": [], "runs": 0})
            d["runs"] += 1
            d["pages"].append(v.get("pages"))
            d["all_pages"].append(v.get("all_pages"))
            d["anon_writes"].append(v.get("anon_writes"))
            d["killed"] += bool(v.get("job_killed"))
            d["ms"].append(_ms(v.get("seconds")))
    return {p: {**d, "pages_stats": stats([x for x in d["pages"] if x is not None and x >= 0]),
                "all_pages_stats": stats([x for x in d["all_pages"] if x is not None and x >= 0]),
                "anon_writes_stats": stats([x for x in d["anon_writes"] if x is not None and x >= 0]),
                "ms_stats": stats(d["ms"])} for p, d in pol.items()}


def kill_table(summ: dict, boots: int) -> dict:
    rows = []
    for p, d in summ.items():
        s = d["pages_stats"]
        rows.append([p, d["runs"], fmt(s["p50"], 1), f"{fmt(s['min'], 0)}-{fmt(s['max'], 0)}",
                     fmt(d["all_pages_stats"]["p50"], 1), fmt(d["anon_writes_stats"]["p50"], 1),
                     f"{d['killed']}/{d['runs']}", fmt(d["ms_stats"]["p50"], 0)])
    return table(f"cpuset swap_kill: pages the job wrote to swap before it died ({boots} boots)",
                 ["policy", "runs", "pages median", "pages min-max", "all pages median",
                  "anon writes median", "job killed", "job ran ms median"], rows,
                 "pages / all pages / anon writes: the scenario's pages_before_kill metrics "
                 "(harness/scenarios/cpuset.py) per run; job killed: runs in which the job was "
                 "killed, out of the runs of that policy.")


# --------------------------------------------------------------------------
# instruction counts (QEMU TCG plugin)


INSN_MODES = {
    "idle": "nobody listening, no cpuset",
    "reader": "a /dev/mem_notify reader",
    "cpuset": "job in cpuset A (swap_kill off), sibling B with swap_kill=task",
}

INSN_GUEST = r"""#!/bin/bash
# kexp bench, instruction counting boot: the swap-cost workload, MODE={mode}.
# Measurement windows are delimited by sync(2) (the plugin snapshots its
# counters each time __x64_sys_sync runs): one before the first repetition,
# one after each.
set -u
export PATH={tools}:$PATH
OUT={out}
CG=/sys/fs/cgroup
mountpoint -q $CG || mount -t cgroup2 none $CG
vm() {{ awk -v k="$1" '$1 == k {{ print $2 }}' /proc/vmstat; }}
mkswap {dev} > /dev/null && swapon {dev} || {{ echo "kexp-insn: swapon failed"; exit 1; }}
hog 64 1 > /dev/null 2>&1   # warm up page tables, binaries, caches
case {mode} in
reader)
	mnlisten -m -i 0 -o "$OUT/listeners.log" > "$OUT/mnlisten.out" 2>&1 &
	LPID=$!
	for _ in $(seq 100); do grep -q ready "$OUT/mnlisten.out" 2>/dev/null && break; sleep 0.1; done
	;;
cpuset)
	# memory too: A's pages are then A's, and every hook does its full work
	echo "+cpuset +memory" > $CG/cgroup.subtree_control
	for c in A B; do mkdir -p $CG/$c; echo 0 > $CG/$c/cpuset.cpus; echo 0 > $CG/$c/cpuset.mems; done
	echo task > $CG/B/cpuset.memory.swap_kill || echo "kexp-insn: cannot set swap_kill"
	echo $$ > $CG/A/cgroup.procs   # this script, hence the hog, runs in A
	;;
esac
{{
	echo "mode {mode}"
	echo "mem_notify_open $(find /proc/[0-9]*/fd -lname /dev/mem_notify 2>/dev/null | wc -l)"
	echo "cgroups $(find $CG -mindepth 1 -type d 2>/dev/null | wc -l)"
	echo "swap_kill_B $(cat $CG/B/cpuset.memory.swap_kill 2>/dev/null || echo -)"
	echo "vcpus $(nproc)"
}} > "$OUT/insn-state.txt"
: > "$OUT/insn-reps.txt"
sync
for i in $(seq {reps}); do
	p0=$(vm pswpout)
	hog {hog_mb} {passes} > /dev/null 2>&1
	rc=$?
	p1=$(vm pswpout)
	echo "$i $p0 $p1 $rc" >> "$OUT/insn-reps.txt"
	sync
done
[ -n "${{LPID:-}}" ] && kill $LPID
swapoff {dev}
echo "kexp-insn: done"
"""


def insn_guest_script(mode: str, tools: str, out: str, dev: str, reps: int, hog_mb: int,
                      passes: int) -> str:
    if mode not in INSN_MODES:
        raise ValueError(mode)
    q = shlex.quote
    return INSN_GUEST.format(mode=mode, tools=q(tools), out=q(out), dev=q(dev), reps=int(reps),
                             hog_mb=int(hog_mb), passes=int(passes))


def parse_insn_reps(text: str) -> list[dict]:
    out = []
    for line in text.splitlines():
        f = line.split()
        if len(f) >= 4:
            out.append({"rep": int(f[0]), "pages": int(f[2]) - int(f[1]), "rc": int(f[3])})
    return out


def insn_per_rep(counts, reps: list[dict], hook: str = "__mem_notify_swapout") -> list[dict]:
    """Per repetition: instructions in the window between its marks, per page
    swapped out.  Mark 0 precedes repetition 1; mark i follows repetition i."""
    out = []
    for r in reps:
        i = r["rep"]
        if i >= len(counts.marks):
            break
        w = counts.window(i - 1, i)
        pages = r["pages"]

        def per(x, pages=pages):
            return x / pages if pages > 0 else None

        out.append({"rep": i, "pages": pages, "kernel": w["kernel"], "series": w["series"],
                    "hook_calls": w["calls"].get(hook, 0), "insns": w["insns"],
                    "kernel_per_page": per(w["kernel"]), "series_per_page": per(w["series"]),
                    "hook_calls_per_page": per(w["calls"].get(hook, 0))})
    return out


def _crashed(res: results.ScenarioResult, g) -> bool:
    """Add a counting boot's console splats to ``res``; if the kernel under
    test panicked or oopsed, make ``res`` a CRASH and say so."""
    from . import console

    sp = console.scan(g.console, frozenset())
    res.splats += [{"kind": s.kind, "line": s.line, "context": s.context} for s in sp]
    if g.panicked or any(s.kind in results.CRASH_KINDS for s in sp):
        res.outcome, res.crash = "CRASH", "kernel crashed during the counting boot"
        return True
    return False


def _insn_boot(k: kmod.Kernel, mode: str, rundir: Path, reps: int) -> results.ScenarioResult:
    """One counting boot; its metrics hold the per-repetition counts."""
    from . import tcgplugin, vm
    from .errors import HarnessError

    name = f"insn-count-{mode}"
    res = results.ScenarioResult(name, k.kind, "ERROR", rundir=str(rundir))
    rundir.mkdir(parents=True, exist_ok=True)
    cost = get("swap-cost")
    swap = rundir / "swap.img"
    try:
        tools = scenario.guest_tools()
        outf = rundir / "insncount.txt"
        outf.unlink(missing_ok=True)
        opts, ranges = tcgplugin.counting_opts(k, outf)
        subprocess.run(["truncate", "-s", cost.disks.get("swap.img", "1G"), str(swap)], check=True)
        spec = vm.GuestSpec(name=f"insn-{mode}", memory=cost.guest.memory, cpus=1,
                            disks=[str(swap)], append=["nokaslr"], qemu_opts=opts,
                            rwdirs=[str(rundir)], timeout=max(cost.guest.timeout, 2400))
        script = insn_guest_script(mode, str(tools), str(rundir), "/dev/vda", reps,
                                   cost.params.get("hog_mb", 512), cost.params.get("passes", 2))
        (rundir / "guest.sh").write_text(script)
        g = vm.run_exec(spec, k.image, f"bash {shlex.quote(str(rundir / 'guest.sh'))}", rundir)
        res.accel, res.boot_seconds = g.accel, g.seconds
        if _crashed(res, g):
            return res
        if not outf.is_file():
            res.error = f"no plugin output (guest rc={g.rc}, timed out={g.timed_out}); see {rundir}"
            return res
        counts = tcgplugin.parse_output(outf.read_text())
        reps_f = rundir / "insn-reps.txt"
        rep_rows = parse_insn_reps(reps_f.read_text()) if reps_f.is_file() else []
        state = {}
        sf = rundir / "insn-state.txt"
        if sf.is_file():
            state = dict(ln.split(" ", 1) for ln in sf.read_text().splitlines() if " " in ln)
        expected = len(rep_rows) + 1
        problems = []
        if counts.vcpus != 1:
            problems.append(f"{counts.vcpus} vCPUs: inline counters not exact")
        if len(counts.marks) < expected:
            problems.append(f"{len(counts.marks)} sync marks, expected {expected}")
        elif len(counts.marks) > expected + 1:
            # virtme-ng's init syncs once at power-off, after the last window
            log("bench", f"{name}[{k.kind}]: {len(counts.marks)} sync marks, {expected} expected; "
                         "using the first ones (later syncs come at shutdown)")
        per = insn_per_rep(counts, rep_rows)
        if not per or any(r["pages"] <= 0 for r in per):
            problems.append("a repetition swapped nothing")
        res.metrics = {"mode": mode, "reps": per, "state": state, "ranges": len(ranges),
                       "marks": len(counts.marks), "vcpus": counts.vcpus,
                       "whole_run_kernel_insns": counts.kernel,
                       "whole_run_ranges": counts.ranges}
        res.error = "; ".join(problems)
        res.outcome = "ERROR" if problems else ("FAIL" if res.splats else "PASS")
    except HarnessError as e:
        res.error = f"{e.stage}: {e}"
    except (OSError, ValueError, subprocess.CalledProcessError) as e:
        res.error = f"harness: {type(e).__name__}: {e}"
    finally:
        vm.kill_all()
        if os.environ.get("KEXP_KEEP_DISKS") != "1":
            swap.unlink(missing_ok=True)
    if res.error:
        log("ERROR", f"{name}[{k.kind}]: {res.error}")
    return res


INSN_ROWS = [("patched", "idle", "patched, idle (nobody listening, no cpuset)"),
             ("patched", "reader", "patched, /dev/mem_notify reader"),
             ("patched", "cpuset", "patched, cpusets + swap_kill policy"),
             ("baseline", "idle", "baseline"),
             ("baseline", "idle-aa", "baseline again (A/A)")]


def insn_section(per_boot: dict[tuple[str, str], list[dict]], nranges: int,
                 states: dict[tuple[str, str], dict] | None = None) -> tuple[list, dict, dict]:
    """Tables, data and plot from per-repetition counts keyed (kind, mode).
    ``states``: what each guest reported before the workload (readers of
    /dev/mem_notify, cgroups, swap_kill of B, vCPUs), shown in the note."""
    rows, data, bars = [], {}, []
    for kind, mode, label in INSN_ROWS:
        reps = per_boot.get((kind, mode))
        if reps is None:
            continue
        ks = stats([r["kernel_per_page"] for r in reps])
        ss = stats([r["series_per_page"] for r in reps])
        hs = stats([r["hook_calls_per_page"] for r in reps])
        ps = stats([r["pages"] for r in reps])
        data[f"{kind}-{mode}"] = {"label": label, "reps": reps, "kernel_per_page": ks,
                                  "series_per_page": ss, "hook_calls_per_page": hs, "pages": ps}
        rows.append([label, len(reps), fmt(ps["p50"], 0),
                     "-" if kind == "baseline" else fmt(ss["p50"], 1),
                     "-" if kind == "baseline" else f"{fmt(ss['min'], 1)}-{fmt(ss['max'], 1)}",
                     "-" if kind == "baseline" else fmt(hs["p50"], 3),
                     fmt(ks["p50"], 0), fmt(ks["spread"], 0)])
        bars.append([label, None if ks["p50"] is None else round(ks["p50"], 1)])
    def kpp(key):
        return [r["kernel_per_page"] for r in per_boot.get(key, [])]

    v = noise_verdict(kpp(("patched", "idle")), kpp(("baseline", "idle")),
                      kpp(("baseline", "idle-aa")), unit="insns/page", words=("more", "fewer"))
    note = ("Counted by the QEMU TCG plugin harness/plugins/insncount.c: an inline counter on every "
            f"guest instruction in the series' {nranges} functions (System.map ranges) and on every "
            "kernel-space instruction, one vCPU, windows between the guest's sync(2) calls, one "
            "window per workload repetition; pages = /proc/vmstat pswpout delta.  Hook entries: "
            "executions of __mem_notify_swapout's first instruction.\n"
            f"kernel insns/page, patched idle vs baseline: {v['verdict']} (patched - baseline "
            f"{fmt(v['difference'], 1)}, A/A {fmt(v['aa_difference'], 1)}, combined spread "
            f"{fmt(v['combined_spread'], 1)}).")
    for (kind, mode), st in (states or {}).items():
        note += (f"\n{kind} {mode}: /dev/mem_notify open {st.get('mem_notify_open', '?')} times, "
                 f"{st.get('cgroups', '?')} cgroups, B swap_kill {st.get('swap_kill_B', '?')}, "
                 f"{st.get('vcpus', '?')} vCPU")
    t1 = table("hook cost in guest instructions, per page swapped out (swap-cost workload)",
               ["kernel / listeners", "reps", "pages/rep", "series insns/page",
                "series insns/page min-max", "hook entries/page", "kernel insns/page",
                "kernel insns/page IQR"], rows, note)
    # per function, patched modes: instructions per page summed over the reps
    funcs: dict[str, dict[str, float]] = {}
    for mode in ("idle", "reader", "cpuset"):
        reps = per_boot.get(("patched", mode)) or []
        pages = sum(r["pages"] for r in reps)
        for r in reps:
            for f, n in r["insns"].items():
                funcs.setdefault(f, {}).setdefault(mode, 0.0)
                funcs[f][mode] += n / pages if pages else 0.0
    frows = [[f, *(fmt(d.get(m), 2) for m in ("idle", "reader", "cpuset"))]
             for f, d in sorted(funcs.items(), key=lambda kv: -max(kv[1].values()))
             if any(d.values())]
    t2 = table("series functions: guest instructions per page swapped out (patched)",
               ["function", "idle", "reader", "cpuset"], frows,
               "Functions the compiler inlined are counted in their caller.")
    data["kernel_per_page_verdict"] = v
    return [t1, t2], data, {"type": "bar", "unit": "kernel insns / page swapped out", "values": bars}


# --------------------------------------------------------------------------
# allocator fast path: guest instructions per operation (TCG plugin)

# what the series touches in the allocators' hot paths, and the pool itself
ALLOC_PATTERNS = (r"get_page_from_freelist$", r"__alloc_pages_noprof$", r"free_unref_page$",
                  r"free_unref_folios$", r"free_unref_page_commit$", r"rmqueue", r"__rmqueue",
                  r"free_pcppages_bulk$", r"free_one_page$", r"kmem_cache_alloc_noprof$",
                  r"kmem_cache_free$", r"___slab_alloc$", r"__slab_free$", r"get_partial_node",
                  r"_*emergpool")
# workload -> (operations per repetition, what one operation is)
ALLOC_WORK = {"pages": (4096, "page touched and unmapped"),
              "slab": (20000, "open()/close() of /dev/null")}
ALLOC_KERNELS = [("patched", "patched"), ("baseline", "baseline"),
                 ("baseline-aa", "baseline again (A/A)")]


def alloc_per_rep(counts, rows: list[tuple[int, int]]) -> list[dict]:
    """Per repetition (mark i-1 to mark i): kernel and allocator-function
    instructions per operation."""
    out = []
    for rep, ops in rows:
        if rep >= len(counts.marks) or ops <= 0:
            break
        w = counts.window(rep - 1, rep)
        out.append({"rep": rep, "ops": ops, "kernel_per_op": w["kernel"] / ops,
                    "alloc_per_op": w["series"] / ops, "insns": w["insns"]})
    return out


def _alloc_boot(k: kmod.Kernel, rundir: Path, reps: int) -> results.ScenarioResult:
    """One counting boot running both churn workloads; metrics per workload."""
    from . import tcgplugin, vm
    from .errors import HarnessError

    res = results.ScenarioResult("alloc-insn", k.kind, "ERROR", rundir=str(rundir))
    rundir.mkdir(parents=True, exist_ok=True)
    try:
        tools = scenario.guest_tools()
        per: dict[str, list[dict]] = {}
        for work, (n, _what) in ALLOC_WORK.items():
            outf = rundir / f"insncount-{work}.txt"
            outf.unlink(missing_ok=True)
            opts, ranges = tcgplugin.counting_opts(k, outf, patterns=ALLOC_PATTERNS)
            spec = vm.GuestSpec(name=f"alloc-{work}", memory="256M", cpus=1, append=["nokaslr"],
                                qemu_opts=opts, rwdirs=[str(rundir)], timeout=1800)
            cmd = (f"{shlex.quote(str(tools / 'churn'))} {work} {n} {reps} > "
                   f"{shlex.quote(str(rundir / f'churn-{work}.txt'))}")
            g = vm.run_exec(spec, k.image, cmd, rundir / work)
            res.accel, res.boot_seconds = g.accel, (res.boot_seconds or 0) + g.seconds
            if _crashed(res, g):
                return res
            if not outf.is_file():
                res.error = f"{work}: no plugin output (guest rc={g.rc}); see {rundir}"
                return res
            counts = tcgplugin.parse_output(outf.read_text())
            cf = rundir / f"churn-{work}.txt"
            rows = [tuple(int(x) for x in ln.split()[:2]) for ln in
                    (cf.read_text().splitlines() if cf.is_file() else []) if len(ln.split()) >= 2]
            if counts.vcpus != 1:
                res.error = f"{work}: {counts.vcpus} vCPUs: inline counters not exact"
                return res
            per[work] = alloc_per_rep(counts, rows)
            if len(per[work]) < reps:
                res.error = f"{work}: {len(per[work])} of {reps} repetitions counted"
                return res
        res.metrics = {"reps": per, "ranges": len(ranges)}
        res.outcome = "FAIL" if res.splats else "PASS"
    except HarnessError as e:
        res.error = f"{e.stage}: {e}"
    except (OSError, ValueError, subprocess.CalledProcessError) as e:
        res.error = f"harness: {type(e).__name__}: {e}"
    finally:
        vm.kill_all()
    if res.error:
        log("ERROR", f"alloc-insn[{k.kind}]: {res.error}")
    return res


def alloc_section(per_kernel: dict[str, dict[str, list[dict]]]) -> tuple[dict, dict]:
    """Table and data from per-repetition counts keyed kernel label -> workload."""
    rows, data = [], {}
    for work in ALLOC_WORK:
        for key, label in ALLOC_KERNELS:
            reps = (per_kernel.get(key) or {}).get(work) or []
            if not reps:
                continue
            ks = stats([r["kernel_per_op"] for r in reps])
            fs = stats([r["alloc_per_op"] for r in reps])
            data.setdefault(work, {})[key] = {"kernel_per_op": ks, "alloc_per_op": fs,
                                              "reps": reps}
            rows.append([work, label, ks["n"], fmt(ks["p50"], 1), fmt(ks["spread"], 2),
                         fmt(ks["max"], 1), fmt(fs["p50"], 1), fmt(fs["spread"], 2),
                         fmt(fs["max"], 1)])

    def col(key, work, field):
        return [r[field] for r in (per_kernel.get(key) or {}).get(work) or []]

    note = ("Guest instructions counted by the QEMU TCG plugin (harness/plugins/insncount.c), one "
            "vCPU, one window per repetition between the workload's sync(2) calls.  'allocator "
            "functions': the page and slab allocator functions the series changes or adds "
            "(ALLOC_PATTERNS; inlined helpers count in their caller).  Per operation: "
            + "; ".join(f"{w}: one {what}" for w, (_n, what) in ALLOC_WORK.items()) + ".")
    for work in ALLOC_WORK:
        for field, name in (("kernel_per_op", "kernel"), ("alloc_per_op", "allocator functions")):
            v = noise_verdict(col("patched", work, field), col("baseline", work, field),
                              col("baseline-aa", work, field), unit="insns/op",
                              words=("more", "fewer"))
            data.setdefault(work, {})[f"{field}_verdict"] = v
            note += (f"\n{work}, {name} insns/op, patched vs baseline: {v['verdict']} "
                     f"(difference {fmt(v['difference'], 2)}, A/A {fmt(v['aa_difference'], 2)})")
    return table("allocator fast path: guest instructions per operation, no memory pressure",
                 ["workload", "kernel", "reps", "kernel insns/op p50", "IQR", "max",
                  "allocator-function insns/op p50", "IQR", "max"], rows, note), data


# --------------------------------------------------------------------------
# emergpool: exclusivity and reserve use, patched vs mainline (probe kernel)


def emergpool_figures(res: results.ScenarioResult) -> dict:
    """The KUnit figures one emergpool (or kunit) run printed in its kernel log."""
    from .scenarios import emergpool as ep

    p = Path(res.rundir or ".") / "kunit-dmesg.txt"
    log_text = p.read_text(errors="replace") if p.is_file() else ""
    return {"slab": ep.exclusivity_rows(log_text), "exhaustion": ep.exhaustion_figures(log_text)}


def emergpool_section(patched: list[dict], probe: list[dict]) -> tuple[list, dict]:
    """Tables: ordinary objects from reserve slabs, patched vs mainline's SLUB;
    pages a flood takes from the reserves, __GFP_MEMALLOC vs the pool."""
    rows = []
    for label, figs in (("patched", patched), ("v6.12 SLUB (probe kernel)", probe)):
        by: dict[tuple[str, str], list[dict]] = {}
        for f in figs:
            for r in f["slab"]:
                by.setdefault((r["flag"], r["mode"]), []).append(r)
        for (flag, mode), rs in sorted(by.items()):
            leak = stats([r["ordinary_pf"] for r in rs])
            rows.append([label, f"__GFP_{flag.upper()}", mode, leak["n"],
                         rs[0]["ordinary"], fmt(leak["p50"], 0), fmt(leak["max"], 0),
                         rs[0]["per_slab"]])
    t1 = table("reserve slab exclusivity: ordinary objects served from a pfmemalloc slab",
               ["kernel", "reserve caller", "case", "boots", "ordinary objects/boot",
                "from reserve slab p50", "max", "objects/slab"], rows,
               "KUnit suite slub_pfmemalloc at boot: one reserve allocation from a private 64-byte "
               "cache, then ordinary allocations on the same cpu (single: 2 slabs' worth through "
               "the fastpath; churn: 10000 alloc/free; bulk: kmem_cache_alloc_bulk).  The probe "
               "kernel is v6.12 with only the test patch (patches/probe).")
    ex = [f["exhaustion"] for f in patched if f["exhaustion"]]
    took = stats([e.get("memalloc_took") for e in ex])
    wm = stats([e.get("min_wmark_pages") for e in ex])
    pool = stats([e.get("pool_pages") for e in ex])
    served = stats([e.get("from_pool") for e in ex])
    t2 = table("reserve a flood drains: __GFP_MEMALLOC vs __GFP_EMERGPOOL under exhaustion",
               ["caller", "boots", "pages taken p50", "max", "bound"],
               [["__GFP_MEMALLOC (mainline reserve)", took["n"], fmt(took["p50"], 0),
                 fmt(took["max"], 0), f"none: every page it asked for (the test stops at half "
                 f"the min reserve of {fmt(wm['p50'], 0)} pages)"],
                ["__GFP_EMERGPOOL", served["n"], fmt(served["p50"], 0), fmt(served["max"], 0),
                 f"the pool: {fmt(pool['p50'], 0)} pages"]],
               "KUnit case emergpool_test_exhaustion: memory taken without reclaim until ordinary "
               "allocations fail, then order-0 allocations with each flag until they fail.")
    return [t1, t2], {"patched": patched, "probe": probe}


# --------------------------------------------------------------------------
# main


# netswap-flood variants: name -> (parameters, share of netswap_runs, kernels);
# the first is the scenario as make test runs it, the others vary what the
# baseline's outcome could depend on
NETSWAP_VARIANTS = {
    "default": ({}, 1.0, ("baseline", "patched")),
    "no flood": ({"flood": "none"}, 0.2, ("baseline",)),
    "flood from boot": ({"flood_lead_s": -1}, 0.2, ("baseline",)),
    "separate storage link": ({"topology": "p2p"}, 0.2, ("baseline",)),
    "min_free_kbytes 8192": ({"min_free_kbytes": 8192}, 0.2, ("baseline",)),
    "slow-growing job": ({"fill_ms_per_mb": 200}, 0.2, ("baseline",)),
    # what stalled swap over NBD under vng with no flood: the 9p root or
    # nbd-client's default (no) timeout
    "no flood, job from 9p": ({"flood": "none", "a_root": "9p"}, 0.2, ("baseline",)),
    "no flood, nbd default timeout": ({"flood": "none", "nbd_timeout": 0}, 0.2, ("baseline",)),
}


def netswap_row(label: str, kind: str, runs: list[results.ScenarioResult]) -> list:
    """One table row: wedge rate and resume times over ``runs``."""
    judged = [r for r in runs if r.outcome not in ("ERROR",)]
    wedged = [r for r in judged if (r.check("survived") is None
                                    or r.check("survived").status != "PASS")]
    crashed = [r for r in judged if r.outcome == "CRASH"]
    res = stats([r.metrics.get("swap I/O resumed after C returned (s)") for r in judged])
    hung = sum(1 for r in judged if r.metrics.get("hung_task_reports_on_A"))
    before = sum(1 for r in wedged if r.metrics.get("wedged") == "before the stall")
    stop = stats([r.metrics.get("last NBD completion after B's flood reached A (s)")
                  for r in wedged])
    return [label, kind, len(judged), f"{len(wedged)}/{len(judged)}" if judged else "-",
            before, fmt(stop.get("p50")), len(crashed), hung, fmt(res.get("p50")),
            fmt(res.get("max")), sum(1 for r in runs if r.outcome == "ERROR")]


def netswap_section(runs: dict[tuple[str, str], list[results.ScenarioResult]]) -> tuple[dict, dict]:
    rows = [netswap_row(label, kind, rs) for (label, kind), rs in runs.items()]
    data = {f"{label} [{kind}]": [{"outcome": r.outcome, "rundir": r.rundir,
                                   "checks": {c.name: c.status for c in r.checks},
                                   "metrics": {k: v for k, v in r.metrics.items() if k != "plots"}}
                                  for r in rs] for (label, kind), rs in runs.items()}
    t = table("netswap-flood: does A survive C's stall while B floods it",
              ["variant", "kernel", "runs", "wedged", "of them before C stopped",
               "NBD stopped after flood p50 s", "crash", "hung-task runs", "resume p50 s",
               "resume max s", "errors"], rows,
              "wedged: no job progress for wedge_s after C returned, or the job never finished "
              "(host-judged from A's heartbeat); NBD stopped after flood: A's last NBD "
              "completion after B's traffic reached it, wedged runs; resume: C's return to A's "
              "first NBD completion")
    return t, data


def _listener_setup(rundir: Path) -> dict:
    from .scenarios import notify_latency

    f = rundir / "mnlisten.out"
    fn = getattr(notify_latency, "listener_setup", None)
    return fn(f.read_text(errors="replace")) if fn and f.is_file() else {}


def _kernels(ksrc, debug, no_build, kinds):
    out = {}
    for kind in kinds:
        if no_build:
            k = kmod.load_built(kind, ksrc, debug)
            if k is None:
                from .errors import HarnessError
                raise HarnessError(f"no {kind} kernel built yet (run make kernel)")
            out[kind] = k
        else:
            out[kind] = kmod.build(kind, ksrc=ksrc, debug=debug)
    return out


def main(runs: int = 10, reps: int = 5, ksrc: str | None = None, debug: bool = False,
         kill_runs: int = 5, cost_rounds: int = 2, insn_reps: int = 3,
         only: list[str] | None = None, no_build: bool = False, netswap_runs: int = 10,
         emergpool_boots: int = 3) -> int:
    secs_on = set(only or SECTIONS)
    need = ["patched"] + (["baseline"] if secs_on & {"cost", "insn", "alloc", "netswap"} else []) \
        + (["probe"] if "emergpool" in secs_on else [])
    ks = _kernels(ksrc, debug, no_build, need)
    pk, bk = ks["patched"], ks.get("baseline")
    top = runs_dir() / ("bench-" + results.stamp())
    top.mkdir(parents=True)
    kinfo = {k: v.to_dict() for k, v in ks.items()}
    tables: list[dict] = []
    plots: dict = {}
    data: dict = {}
    all_res: list[results.ScenarioResult] = []

    if "latency" in secs_on:
        log("bench", f"notify latency over {runs} swap onsets (patched)")
        scn = _with("notify-latency", runs=runs)
        lr = scenario.run(scn, pk, top / "notify-latency" / "patched")
        all_res.append(lr)
        t, d, p = latency_section(lr.metrics.get("latency", {}), scn.params,
                                  _listener_setup(Path(lr.rundir)))
        if lr.outcome not in ("PASS", "XFAIL"):
            t["note"] += f"\nscenario outcome: {lr.outcome} {lr.error.splitlines()[0] if lr.error else ''}"
        tables.append(t)
        data["latency"] = {**d, "outcome": lr.outcome}
        plots["notify latency: delay after the first anonymous swap write"] = p

    if "herd" in secs_on:
        log("bench", "herd (patched)")
        hr = scenario.run(get("herd"), pk, top / "herd" / "patched")
        all_res.append(hr)
        hp = get("herd").params
        dm = hr.metrics.get("delay_ms", {})
        tables.append(table("herd: bounded wake-ups of many readers",
                            ["readers", "batch", "rounds", "max released/round",
                             "reader delay min ms", "p50 ms", "max ms"],
                            [[hp["readers"], hp["batch"], hr.metrics.get("rounds"),
                              hr.metrics.get("max_woken_per_round"), dm.get("min"), dm.get("p50"),
                              dm.get("max")]], f"scenario outcome: {hr.outcome}"))
        data["herd"] = {"readers": hp["readers"], "batch": hp["batch"], **hr.metrics,
                        "outcome": hr.outcome}

    if "cost" in secs_on:
        log("bench", f"idle-hook cost: swap-cost x{reps}, boots P, B, B' x{cost_rounds}")
        secs: dict[str, list[float]] = {"patched": [], "baseline": [], "baseline_aa": []}
        boots = dict.fromkeys(secs, 0)
        for i in range(cost_rounds):
            for key, k in (("patched", pk), ("baseline", bk), ("baseline_aa", bk)):
                r = scenario.run(_with("swap-cost", reps=reps), k, top / "swap-cost" / f"{key}-{i}")
                all_res.append(r)
                if r.metrics.get("seconds"):
                    boots[key] += 1
                    secs[key] += r.metrics["seconds"]
        t, d = cost_section(secs, boots)
        tables.append(t)
        data["idle_hook_time"] = d
        plots["idle-hook cost: workload run time per repetition"] = {
            "type": "cdf", "unit": "s",
            "series": {COST_LABELS[k]: v for k, v in secs.items() if v}}

    if "insn" in secs_on:
        log("bench", f"hook cost in guest instructions (TCG plugin, {insn_reps} reps per boot)")
        per_boot: dict[tuple[str, str], list[dict]] = {}
        states: dict[tuple[str, str], dict] = {}
        nranges = 0
        for kind, mode, _label in INSN_ROWS:
            k = pk if kind == "patched" else bk
            r = _insn_boot(k, mode.replace("-aa", ""), top / "insn-count" / f"{kind}-{mode}",
                           insn_reps)
            all_res.append(r)
            if r.metrics.get("reps"):
                per_boot[(kind, mode)] = r.metrics["reps"]
                states[(kind, mode)] = r.metrics.get("state", {})
                if kind == "patched":
                    nranges = r.metrics.get("ranges", nranges)
        ts, d, p = insn_section(per_boot, nranges, states)
        tables += ts
        data["hook_instructions"] = d
        plots["kernel instructions per page swapped out"] = p

    if "alloc" in secs_on:
        log("bench", f"allocator fast path in guest instructions ({insn_reps} reps per workload)")
        per_kernel: dict[str, dict[str, list[dict]]] = {}
        for key, _label in ALLOC_KERNELS:
            k = pk if key == "patched" else bk
            r = _alloc_boot(k, top / "alloc-insn" / key, max(insn_reps, 3))
            all_res.append(r)
            if r.metrics.get("reps"):
                per_kernel[key] = r.metrics["reps"]
        t, d = alloc_section(per_kernel)
        tables.append(t)
        data["alloc_instructions"] = d

    if "emergpool" in secs_on:
        log("bench", f"emergpool: {emergpool_boots} boots each, patched and probe (v6.12 SLUB)")
        figs: dict[str, list[dict]] = {"patched": [], "probe": []}
        for i in range(emergpool_boots):
            r = scenario.run(get("emergpool"), pk, top / "emergpool" / f"patched-{i}")
            all_res.append(r)
            figs["patched"].append(emergpool_figures(r))
            pr = scenario.run(get("slub-exclusivity"), ks["probe"],
                              top / "emergpool" / f"probe-{i}")
            all_res.append(pr)
            figs["probe"].append(emergpool_figures(pr))
        ts, d = emergpool_section(figs["patched"], figs["probe"])
        tables += ts
        data["emergpool"] = d

    if "cpuset" in secs_on:
        log("bench", f"cpuset swap_kill: {kill_runs} boots (patched)")
        kruns = []
        for i in range(kill_runs):
            kr = scenario.run(get("cpuset-swap-kill"), pk, top / "cpuset-swap-kill" / f"patched-{i}")
            all_res.append(kr)
            if kr.metrics.get("pages_before_kill"):
                kruns.append(kr.metrics["pages_before_kill"])
        summ = kill_summary(kruns)
        tables.append(kill_table(summ, len(kruns)))
        data["pages_before_kill"] = {"boots": len(kruns), "per_boot": kruns, "policies": summ}
        plots["pages written to swap by the job before it died"] = {
            "type": "dots", "unit": "pages",
            "series": {p: [x for x in d["pages"] if x is not None] for p, d in summ.items()}}
        ir = scenario.run(get("cpuset-isolation"), pk, top / "cpuset-isolation" / "patched")
        all_res.append(ir)
        wk = ir.metrics.get("wakeups", {})
        data["cpuset_isolation"] = {**wk, "outcome": ir.outcome}
        tables.append(table("cpuset isolation: A swaps, B quiet",
                            ["A poll wake-ups", "A inotify events", "B false alarms"],
                            [[wk.get("A_poll"), wk.get("A_inotify"), wk.get("B_false_alarms")]],
                            f"scenario outcome: {ir.outcome}"))

    if "netswap" in secs_on:
        log("bench", f"netswap-flood: {netswap_runs} runs per kernel, variants fewer")
        ns: dict[tuple[str, str], list[results.ScenarioResult]] = {}
        for label, (params, share, kinds) in NETSWAP_VARIANTS.items():
            n = max(1, round(netswap_runs * share))
            for kind, k in (("baseline", bk), ("patched", pk)):
                if kind not in kinds:
                    continue
                for i in range(n):
                    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", label).strip("-")
                    r = scenario.run(_with("netswap-flood", **params), k,
                                     top / "netswap-flood" / f"{slug}-{kind}-{i}")
                    all_res.append(r)
                    ns.setdefault((label, kind), []).append(r)
        t, d = netswap_section(ns)
        tables.append(t)
        data["netswap"] = d
        for r in ns.get(("default", "baseline"), [])[:1]:
            for title, spec in (r.metrics.get("plots") or {}).items():
                plots[f"netswap-flood, one baseline run: {title}"] = spec

    bench = {"title": "kexp bench: patched vs baseline vs peers", "started": top.name,
             "kernels": kinfo, "tables": tables, "plots": plots}
    text = "\n\n".join(render(t) for t in tables) + "\n"
    (top / "bench.txt").write_text(text)
    (top / "bench.json").write_text(json.dumps({**bench, "data": data}, indent=1, default=str))
    rec = results.RunRecord(top.name, kinfo, all_res, "make bench")
    results.write_json(rec, top / "results.json")
    write_report(bench, top / "report.html")
    print(text)
    print(f"bench: {top}/bench.txt  {top}/bench.json  {top}/report.html")
    return results.exit_code(all_res)


def write_report(bench: dict, path: Path) -> None:
    from . import report

    try:
        report.write_bench_html(bench, path)
    except AttributeError as e:
        log("warning", f"report.html not written: harness.report has no write_bench_html ({e})")
    except Exception as e:  # the page is a view; bench.json is the record
        log("warning", f"report.html not written: {type(e).__name__}: {e}")
