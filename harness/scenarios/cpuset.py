"""Per-cpuset pressure files and kill-on-swap, on a two-node NUMA guest.

cpuset-isolation: pressure in A is counted and announced; B sees nothing.
cpuset-swap-kill: pages a swapping job writes before it dies, per policy and
for a userspace killer (earlyoom).
cpuset-abi: bad input to both files, as root and unprivileged.

The job is judged from its own side with mainline counters: A's
memory.swap.peak counts every swap slot ever charged to the job; the series'
own counters (memory.stat pswpout, cpuset.memory.pressure) are reported and
must agree, never trusted alone.  Everything but the job's cpusets runs in a
cgroup with memory.swap.max=0, so the global pswpout and the traced anonymous
writes show what the job made the machine write; they also count tasks left
in the root cgroup, which reclaim may swap while the job's pages are kept, so
they bound the "off" run (the workload needs swap) and are reported otherwise.
"""

from __future__ import annotations

from pathlib import Path

from .. import checks as ck
from .. import kernel as kmod
from ..checks import CheckDef, Judging
from ..results import ScenarioResult
from ..scenario import Scenario, build_selftest
from ..vm import GuestSpec, NumaNode

KILLED = ("137", "143")  # SIGKILL, SIGTERM


def _numa_guest(name: str, timeout: float) -> GuestSpec:
    return GuestSpec(name=name, memory="640M", cpus=2,
                     numa=[NumaNode("320M", "0"), NumaNode("320M", "1")], timeout=timeout)


def parse_killrun(text: str) -> dict[str, dict[str, str]]:
    out = {}
    for line in text.splitlines():
        f = line.split()
        if f:
            out[f[0]] = dict(x.split("=", 1) for x in f[1:] if "=" in x)
    return out


def _int(v: str | None) -> int | None:
    try:
        return int(v) if v not in (None, "", "NA") else None
    except ValueError:
        return None


def _probe_cpuset(key: str):
    def j(jg: Judging) -> ck.Verdict:
        if jg.m.get("setup_error"):
            return ck.fail(f"cpuset setup failed: {jg.m['setup_error']}",
                           setup_error=jg.m["setup_error"])
        return ck.verdict(jg.m.get("present") == "1", f"cpuset files: {jg.m.get('files', '')}",
                          f"{key} exists")
    return j


# ---------------------------------------------------------------- swap-kill


def _runs(j: Judging) -> dict[str, dict[str, str]]:
    return parse_killrun(j.text(j.m.get("runs", "")))


# counts that are the job's own: mainline's memory.swap.peak of A (every swap
# slot ever charged to A) and the series' memory.stat pswpout of A
OWN_COUNTS = ("swap_peak", "series")


def job_pages(r: dict[str, str]) -> dict[str, int | None]:
    """Pages of the job on swap, by each count: A's memory.swap.peak in pages
    (mainline) and A's memory.stat pswpout (the series); and, for context,
    global pswpout and traced anonymous writes (mainline), which also count
    the pages of tasks left in the root cgroup: while A's pages are kept,
    reclaim may swap theirs."""
    peak = _int(r.get("a_swap_peak"))
    return {"swap_peak": None if peak is None else peak // 4096,
            "series": _int(r.get("job_pages")),
            "global": _int(r.get("global_pages")), "traced": _int(r.get("writes"))}


def _pages_ok(r: dict[str, str], limit: int) -> tuple[bool, str]:
    p = job_pages(r)
    bad = [f"{k} {p[k]}" for k in OWN_COUNTS if p[k] is not None and p[k] > limit]
    ok = p["swap_peak"] is not None and not bad
    return ok, ", ".join(f"{k} {v}" for k, v in p.items())


def _run_for(j: Judging, policy: str) -> tuple[str, dict[str, str] | None]:
    """The run judged as ``policy`` (a negative control may judge another)."""
    src = (j.params.get("judge_as") or {}).get(policy, policy)
    return src, _runs(j).get(src)


def _policy_run(j: Judging, policy: str):
    """The run judged as ``policy``, its page limit, whether every count of
    the job's pages is within it, and the hogs' exit codes; or a FAIL verdict
    when there is no such run."""
    src, r = _run_for(j, policy)
    if r is None:
        return ck.fail(f"no {src} run")
    lim = j.params["max_pages"]
    ok, pages = _pages_ok(r, lim)
    return src, r, lim, ok, pages, (r.get("hog1"), r.get("hog2"))


def j_off(j: Judging) -> ck.Verdict:
    r = _runs(j).get("off")
    lim = j.params["max_pages"]
    if r is None:
        return ck.fail("no off run")
    if "setup_error" in r:
        return ck.fail(f"setup failed: {r['setup_error']}")
    g = _int(r.get("global_pages")) or 0
    return ck.verdict(g > lim and r.get("hog1") == "0" and r.get("hog2") == "0",
                      f"off: {g} pages to swap, hogs rc {r.get('hog1')}/{r.get('hog2')}",
                      f"> {lim} pages and both hogs complete (the workload needs swap)",
                      global_pages=g)


def j_task(j: Judging) -> ck.Verdict:
    """``task`` promises: the job writes at most max_pages, a task whose pages
    reclaim would swap is killed.  Each hog either completes or is killed
    (one may finish without swapping once the other's memory is freed); at
    least one is killed; the sleeper, which allocates nothing, lives."""
    got = _policy_run(j, "task")
    if isinstance(got, ck.Verdict):
        return got
    src, r, lim, ok, pages, rcs = got
    ends = all(x in ("0", *KILLED) for x in rcs) and any(x in KILLED for x in rcs)
    return ck.verdict(ok and ends and r.get("sleeper_alive") == "1",
                      f"{src}: pages {pages}; hogs rc {rcs[0]}/{rcs[1]}; sleeper alive "
                      f"{r.get('sleeper_alive')}", f"<= {lim} pages by every count, >= 1 hog "
                      "killed, no other end, sleeper alive", **job_pages(r))


def j_cpuset(j: Judging) -> ck.Verdict:
    got = _policy_run(j, "cpuset")
    if isinstance(got, ck.Verdict):
        return got
    src, r, lim, ok, pages, rcs = got
    return ck.verdict(ok and all(x in KILLED for x in rcs) and r.get("sleeper_alive") == "0"
                      and r.get("a_left") == "0",
                      f"{src}: pages {pages}; hogs rc {rcs[0]}/{rcs[1]}; sleeper alive "
                      f"{r.get('sleeper_alive')}; tasks left in A {r.get('a_left')}",
                      f"<= {lim} pages, every task of A killed", **job_pages(r))


def j_kills(j: Judging) -> ck.Verdict:
    runs = _runs(j)
    k = {p: _int(runs.get(p, {}).get("a_kills")) for p in ("off", "task", "cpuset")}
    return ck.verdict((k["task"] or 0) >= 1 and (k["cpuset"] or 0) >= 1 and k["off"] == 0,
                      f"kills in A: off={k['off']} task={k['task']} cpuset={k['cpuset']}",
                      "off 0, task >= 1, cpuset >= 1", **k)


def j_b(j: Judging) -> ck.Verdict:
    runs = {p: r for p, r in _runs(j).items() if "setup_error" not in r}
    bad = [f"{p}: B alive {r.get('b_alive')}, swap peak {r.get('b_swap_peak')}"
           for p, r in runs.items()
           if r.get("b_alive") != "1" or (_int(r.get("b_swap_peak")) or 0) > 0
           or (_int(r.get("b_swapouts")) or 0) > 0]
    return ck.verdict(bool(runs) and not bad, "; ".join(bad) or f"B's job alive, nothing of B "
                      f"swapped, in {len(runs)} runs ({', '.join(runs)})",
                      "B's job alive, B's memory.swap.peak 0", runs=len(runs))


def j_earlyoom(j: Judging) -> ck.Verdict:
    if j.all.get("runs", {}).get("earlyoom", "not installed") == "not installed":
        return ck.skip("earlyoom not installed in the guest")
    r = _runs(j).get("earlyoom")
    if r is None:
        return ck.fail("earlyoom run missing")
    log = j.text("earlyoom.txt")
    started = "earlyoom" in log and r.get("earlyoom_alive") == "1"
    killed = any(x in KILLED for x in (r.get("hog1"), r.get("hog2")))
    p = job_pages(r)
    return ck.verdict(started and killed and r.get("b_alive") == "1",
                      f"earlyoom running {started}; hogs rc {r.get('hog1')}/{r.get('hog2')}; "
                      f"job pages to swap {p['global']} (peer figure, not bounded)",
                      "the peer ran and killed the job; B alive", **p)


SWAP_KILL_CHECKS = (
    ck.feature_probe("cpuset.memory.swap_kill exists on a child cpuset", _probe_cpuset("swap_kill")),
    CheckDef("off_job_swaps", "with no policy the job writes more than max_pages and completes "
             "(the workload is not vacuous)", j_off),
    CheckDef("task_kills_before_swap", "task: at most max_pages written by every count, at least "
             "one hog killed, the sleeper alive", j_task, needs_feature=True),
    CheckDef("cpuset_kills_whole_job", "cpuset: at most max_pages written, every task of A killed",
             j_cpuset, needs_feature=True),
    CheckDef("kills_counted", "cpuset.memory.pressure kills: 0 under off, >= 1 under task and "
             "cpuset", j_kills, needs_feature=True),
    CheckDef("b_untouched", "in every run B's job lives and nothing of B is swapped", j_b),
    CheckDef("peer_earlyoom", "earlyoom, as tight as it goes, ran and killed the job; pages it "
             "let through are reported", j_earlyoom),
)


def evaluate_kill(res: ScenarioResult, rundir: Path, kind: str) -> None:
    f = rundir / "killrun.txt"
    if not f.is_file():
        return
    runs = parse_killrun(f.read_text())
    res.metrics["pages_before_kill"] = {
        p: {"pages": _int(r.get("global_pages")), "all_pages": _int(r.get("global_pages")),
            "series_pages": _int(r.get("job_pages")), "anon_writes": _int(r.get("writes")),
            "job_killed": r.get("hog1") in KILLED or r.get("hog2") in KILLED,
            "seconds": r.get("ms", "")} for p, r in runs.items() if "setup_error" not in r}
    res.metrics["plots"] = {"pages the job wrote to swap (global pswpout)": {
        "type": "bar", "unit": "pages",
        "values": [[p, v["pages"]] for p, v in res.metrics["pages_before_kill"].items()]}}


# ---------------------------------------------------------------- isolation


def watch_counts(log: str) -> dict[str, int]:
    lines = log.splitlines()
    return {"A_poll": sum(1 for ln in lines if ln.startswith("poll ") and "/A/" in ln),
            "A_inotify": sum(1 for ln in lines if ln.startswith("inotify ") and "/A/" in ln),
            "B_false_alarms": sum(1 for ln in lines if "/B/" in ln)}


def _flat(text: str) -> dict[str, str]:
    return dict(ln.split(None, 1) for ln in text.splitlines() if len(ln.split(None, 1)) == 2)


def j_workload(j: Judging) -> ck.Verdict:
    b, a = _int(j.m.get("pswpout_before")), _int(j.m.get("pswpout_after"))
    return ck.verdict(b is not None and a is not None and a > b and j.m.get("hog_rc") == "0",
                      f"pswpout {b} -> {a}; hog rc {j.m.get('hog_rc')}",
                      "A's hog makes the kernel swap, and completes")


def j_a_counts(j: Judging) -> ck.Verdict:
    p = _flat(j.text("A.pressure"))
    b, a = _int(j.all.get("a_workload_swaps", {}).get("pswpout_before")), _int(
        j.all.get("a_workload_swaps", {}).get("pswpout_after"))
    sw = _int(p.get("swapouts"))
    return ck.verdict(sw is not None and sw > 0 and a is not None and b is not None and a > b,
                      f"A: {' '.join(f'{k}={v}' for k, v in p.items())}; global pswpout +"
                      f"{(a or 0) - (b or 0)}", "A's swapouts > 0 while the global pswpout rose",
                      swapouts=sw)


def _watch_judge(key: str, what: str):
    def j(jg: Judging) -> ck.Verdict:
        if jg.m.get("ready") != "1":
            return ck.fail(f"cgwatch never armed: {jg.m.get('stdout', '')}")
        n = watch_counts(jg.text("watch.log"))[key]
        return ck.verdict(n > 0, f"{what}: {n}", "> 0", count=n)
    return j


def j_b_quiet(j: Judging) -> ck.Verdict:
    p = _flat(j.text("B.pressure"))
    return ck.verdict(bool(p) and all(p.get(k) == "0" for k in ("swapouts", "rate", "kills"))
                      and all(v == "0" for v in p.values()),
                      f"B: {' '.join(f'{k}={v}' for k, v in p.items())}", "every count 0")


def j_b_alarms(j: Judging) -> ck.Verdict:
    if j.m.get("ready") != "1":
        return ck.fail(f"cgwatch never armed: {j.m.get('stdout', '')}")
    n = watch_counts(j.text("watch.log"))["B_false_alarms"]
    return ck.verdict(n == 0, f"wake-ups of B's watchers (poll + inotify): {n}", "0", count=n)


def j_b_alive(j: Judging) -> ck.Verdict:
    peak = _int(j.m.get("b_swap_peak"))
    return ck.verdict(j.m.get("alive") == "1" and (peak or 0) == 0,
                      f"B's job running after A's hog: {j.m.get('alive') == '1'}; B's "
                      f"memory.swap.peak {j.m.get('b_swap_peak')}", "alive, nothing swapped")


ISO_CHECKS = (
    ck.feature_probe("cpuset.memory.pressure exists on a child cpuset", _probe_cpuset("pressure")),
    CheckDef("a_workload_swaps", "A's hog makes the kernel swap (global pswpout) and completes",
             j_workload),
    CheckDef("a_swapouts", "A's cpuset.memory.pressure counts swap-outs", j_a_counts,
             needs_feature=True),
    CheckDef("a_poll_woke", "a poll(POLLPRI) watcher of A's file woke", _watch_judge(
        "A_poll", "A poll wake-ups"), needs_feature=True),
    CheckDef("a_inotify_woke", "an inotify watcher of A's file got events", _watch_judge(
        "A_inotify", "A inotify events"), needs_feature=True),
    CheckDef("b_quiet", "B's cpuset.memory.pressure stays at zero", j_b_quiet, needs_feature=True),
    CheckDef("b_no_false_alarms", "B's poll and inotify watchers never woke", j_b_alarms,
             needs_feature=True),
    CheckDef("b_job_alive", "B's job keeps running and nothing of B is swapped", j_b_alive),
)


def evaluate_iso(res: ScenarioResult, rundir: Path, kind: str) -> None:
    w = rundir / "watch.log"
    if w.is_file():
        res.metrics["wakeups"] = watch_counts(w.read_text())


ISOLATION = Scenario(
    name="cpuset-isolation",
    description="A swaps: its cpuset.memory.pressure counts and wakes poll+inotify; B stays silent",
    guest=_numa_guest("iso", 600),
    disks={"swap.img": "1G"},
    feature="cpuset_pressure",
    params={"hog_mb": 448, "quiet_mb": 32, "quiet_passes": 1000000000, "hog_in": "A"},
    evaluate=evaluate_iso,
    checks=ISO_CHECKS,
)

SWAP_KILL = Scenario(
    name="cpuset-swap-kill",
    description="swap_kill off/task/cpuset and earlyoom: pages written before the job dies",
    guest=_numa_guest("kill", 1200),
    disks={"swap.img": "1G"},
    feature="cpuset_pressure",
    allow_splats=frozenset({"oom_kill"}),
    params={"hog_mb": 256, "max_pages": 32, "policies": ["off", "task", "cpuset"], "judge_as": {}},
    evaluate=evaluate_kill,
    checks=SWAP_KILL_CHECKS,
)

# ---------------------------------------------------------------- abi

SELFTEST = "tools/testing/selftests/cgroup/test_cpuset_pressure.c"
EINVAL = "Invalid argument"
DENIED = ("Permission denied", "Operation not permitted")


def prepare_abi(kernel: kmod.Kernel, rundir: Path) -> dict:
    """Build the series' cgroup kselftest from the patched tree."""
    return build_selftest(kernel, rundir, SELFTEST,
                          extra=("tools/testing/selftests/cgroup/cgroup_util.c",))


def _tries(m: dict[str, str]) -> list[list[str]]:
    keys = sorted((k for k in m if k.startswith("try")), key=lambda k: int(k[3:]))
    return [(m[k].split("|") + [""] * 4)[:4] for k in keys]  # value|error|before|after


# cases of the cgroup kselftest that need swap: skipping them is a failure
SELFTEST_SWAP_CASES = ("test_pageout_counted", "test_pageout_vetoed", "test_hierarchy",
                       "test_shmem", "test_cross_cpuset", "test_own_reclaim",
                       "test_cpuset_kill", "test_proactive_reclaim")


def j_pformat(j: Judging) -> ck.Verdict:
    p = _flat(j.m.get("content", ""))
    keys_ok = all(k in p for k in ("swapouts", "rate", "kills", "vetoes"))
    nums = all(v.isdigit() for v in p.values())
    return ck.verdict(keys_ok and nums and bool(p), f"{j.m.get('content', '')!r}",
                      "flat keyed: swapouts, rate, kills, vetoes; numeric values")


def j_pro(j: Judging) -> ck.Verdict:
    err, after = j.m.get("error", ""), _flat(j.m.get("after", "")).get("swapouts")
    return ck.verdict(bool(err) and after == "0", f"write: {err or 'accepted'}; swapouts after: "
                      f"{after}; mode {j.m.get('mode')}", "write refused, value unchanged")


def j_kvalues(j: Judging) -> ck.Verdict:
    t = _tries(j.m)
    bad = [] if j.m.get("default") == "off" else [f"default {j.m.get('default')}"]
    bad += [f"{v}: {e or 'read back ' + a}" for v, e, _, a in t if e or a != v]
    return ck.verdict(bool(t) and not bad, "; ".join(bad) or "default off; task, cpuset, off "
                      "accepted and read back", "accepted, read back")


def j_kbad(j: Judging) -> ck.Verdict:
    t = _tries(j.m)
    bad = [f"{v!r}: {e or 'accepted'}" + ("" if b == a else f", changed to {a}")
           for v, e, b, a in t if EINVAL not in e or b != a]
    return ck.verdict(bool(t) and not bad, "; ".join(bad) or f"all {len(t)} rejected with EINVAL, "
                      "value unchanged", "EINVAL, unchanged", attempts=len(t))


def j_unpriv(j: Judging) -> ck.Verdict:
    uerr, after = j.m.get("user_error", ""), j.m.get("user_after", "")
    bad = []
    if not any(d in uerr for d in DENIED) or after != "off":
        bad.append(f"nobody: {uerr or 'accepted'}, value {after}")
    if j.m.get("root_file") == "1" and (not j.m.get("root_error") or j.m.get("root_after") != "off"):
        bad.append(f"root cpuset took 'task': {j.m.get('root_error') or 'accepted'}")
    return ck.verdict(not bad, "; ".join(bad) or f"nobody: {uerr}; root cpuset: "
                      + ("refused" if j.m.get("root_file") == "1" else "no swap_kill file"),
                      "EACCES/EPERM for nobody; root cpuset has no policy")


ABI_CHECKS = (
    ck.feature_probe("both files exist on a child cpuset", _probe_cpuset("both files")),
    CheckDef("pressure_format", "cpuset.memory.pressure is flat keyed with numeric values",
             j_pformat, needs_feature=True),
    CheckDef("pressure_read_only", "writing the pressure file fails and changes nothing", j_pro,
             needs_feature=True),
    CheckDef("swap_kill_values", "default off; task, cpuset, off accepted and read back",
             j_kvalues, needs_feature=True),
    CheckDef("swap_kill_bad_values", "bad policy words: EINVAL, value unchanged", j_kbad,
             needs_feature=True),
    CheckDef("unprivileged_and_root", "nobody cannot set a policy; the root cpuset has none",
             j_unpriv, needs_feature=True),
    CheckDef("kselftest", "the series' cgroup kselftest as root with swap: complete, no "
             "failure, the swap-out and kill cases run",
             ck.kselftest_requiring(SELFTEST_SWAP_CASES, "root, swap and memory controller"),
             needs_feature=True),
)

ABI = Scenario(
    name="cpuset-abi",
    description="bad values and unprivileged writes to cpuset.memory.{pressure,swap_kill}",
    guest=GuestSpec(name="cpuabi", memory="256M", cpus=2, timeout=900),
    disks={"swap.img": "512M"},
    feature="cpuset_pressure",
    prepare=prepare_abi,
    checks=ABI_CHECKS,
    params={"chmod_files": ""},
)

NEGATIVE = [
    # A's hog runs in B: B swaps, so B's pressure and watchers must say so
    ISOLATION.negative("neg", "the hog runs in B: B must not look quiet",
                       ("b_quiet", "b_no_false_alarms", "b_job_alive"), hog_in="B"),
    # the off run judged by the task bound must fail
    SWAP_KILL.negative("neg", "policy off judged by the task bound",
                       ("task_kills_before_swap",), policies=["off"], judge_as={"task": "off"}),
    # an administrator opened the policy file to everyone: nobody's write succeeds
    ABI.negative("neg", "swap_kill file chmod o+w: the unprivileged write must be refused "
                 "and is not", ("unprivileged_and_root",), chmod_files="o+w"),
]

SCENARIOS = [ISOLATION, SWAP_KILL, ABI, *NEGATIVE]


# ---------------------------------------------------------------- cross-cpuset


def j_cross_a(j: Judging) -> ck.Verdict:
    """A's pages are judged by their owner's policy whoever reclaims them:
    A's job is killed (or never needed swap) with at most max_pages written
    by the series' count and by memory.swap.peak, mainline's count of every
    swap slot A was ever charged."""
    lim = j.params["max_pages"]
    if j.m.get("holder_ready") != "1":
        return ck.fail("A's holder never filled its memory")
    series, peak = _int(j.m.get("a_series_pages")), _int(j.m.get("a_swap_peak"))
    peak_pages = None if peak is None else peak // 4096
    killed = j.m.get("a_end") in KILLED
    ok = killed and peak_pages is not None and peak_pages <= lim and (series or 0) <= lim
    return ck.verdict(ok, f"A's job {'killed' if killed else 'ended ' + str(j.m.get('a_end'))}; "
                      f"A's pages: series pswpout {series}, memory.swap.peak {peak_pages} pages; "
                      f"global pswpout +{j.m.get('global_pages')}; A: "
                      f"{j.m.get('a_pressure', '').replace(chr(10), ' ')}",
                      f"A's job killed, <= {lim} pages by both counts",
                      a_series_pages=series, a_swap_peak_pages=peak_pages, a_end=j.m.get("a_end"))


def j_cross_b(j: Judging) -> ck.Verdict:
    if j.m.get("setup_error"):
        return ck.fail(j.m["setup_error"])
    return ck.verdict(j.m.get("b_rc") == "0", f"B's hog rc {j.m.get('b_rc')}; global pswpout "
                      f"+{j.m.get('global_pages')}", "B's reclaimer completes (rc 0)")


CROSS_CHECKS = (
    ck.feature_probe("cpuset.memory.swap_kill exists on a child cpuset", _probe_cpuset("swap_kill")),
    CheckDef("b_reclaimer_completes", "B, with no policy, allocates past free memory and "
             "completes", j_cross_b),
    CheckDef("a_job_kept_off_swap", "A's idle job, reclaimed by B and kswapd, is killed with at "
             "most max_pages written (series count and mainline memory.swap.peak)", j_cross_a,
             needs_feature=True),
)

CROSS = Scenario(
    name="cpuset-cross",
    description="A (task) idle, B (off) on the same nodes reclaims A's pages: A dies, B lives",
    guest=GuestSpec(name="cross", memory="512M", cpus=2,
                    numa=[NumaNode("256M", "0"), NumaNode("256M", "1")], timeout=600),
    disks={"swap.img": "1G"},
    feature="cpuset_pressure",
    allow_splats=frozenset({"oom_kill"}),
    params={"policy": "task", "hold_mb": 200, "b_mb": 300, "max_pages": 32},
    checks=CROSS_CHECKS,
    # failed on the series before the swap_kill rework (direct reclaim was
    # charged to the reclaimer's cpuset, the veto came after add_to_swap()):
    # tests/data/runs/cpuset-cross/patched has that run
    ci=True,
)
# negative control: A without a policy; its pages go to swap and it survives
SCENARIOS += [CROSS, CROSS.negative("neg", "A's policy off: A's pages reach swap, "
                                    "a_job_kept_off_swap must fail", ("a_job_kept_off_swap",),
                                    policy="off")]
