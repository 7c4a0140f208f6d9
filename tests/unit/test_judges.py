"""The judges, fed guest output: a good log passes, doctored ones fail the
check they should (each check can fail)."""

from __future__ import annotations

import pytest

from harness import ktap, scenario
from harness.scenarios import all_scenarios

SCN = all_scenarios()


def guest_out(meas: dict[str, dict | str]) -> str:
    """KTAP as a guest prints it: measurements, then 'measured' (or SKIP)."""
    lines = ["KTAP version 1", f"1..{len(meas)}"]
    for i, (name, m) in enumerate(meas.items(), 1):
        if isinstance(m, str):
            lines.append(f"ok {i} {name} # SKIP {m}")
            continue
        for k, v in m.items():
            lines.append(f"# kexp-m {name} {k}={str(v).replace(chr(10), chr(9))}")
        lines.append(f"ok {i} {name}")
    return "\n".join(lines) + "\n"


def judged(name, meas, rundir, kind="patched", strict=False, params=None, info=None):
    scn = SCN[name]
    if params:
        import dataclasses

        scn = dataclasses.replace(scn, params={**scn.params, **params})
    out = guest_out(meas)
    checks = scenario.judge(scn, kind, out, ktap.parse(out), rundir, strict=strict, info=info)
    return {c.name: c for c in checks}


# ------------------------------------------------------------------ herd

N, BATCH, IV, HZ = 1024, 32, 20, 250


def herd_log(delays_ms, kind=1, kts=10_000_000_000):
    return "".join(f"{i} {'epoll' if i % 2 else 'poll'} {kts + int(d * 1e6)} 7 {kind} {kts}\n"
                   for i, d in enumerate(delays_ms)) + f"# done {len(delays_ms)} of {N}\n"


def good_rounds():
    # round r released at r*20 ms, its readers running within 3 ms
    return [(i // BATCH) * IV + 0.3 + (i % BATCH) * 0.09 for i in range(N)]


def herd_meas(tmp, delays, calib_last=100.0, kinds=1, rc=0):
    (tmp / "herd.log").write_text(herd_log(delays, kinds))
    (tmp / "calib.log").write_text(herd_log([calib_last * i / N for i in range(1, N + 1)], 0))
    common = {"log": "herd.log", "batch": BATCH, "interval_ms": IV, "hz": HZ}
    return {"herd_calibration": {"rc": 0, "log": "calib.log", "hz": HZ, "swapping_at_release": 1,
                                 "period_ns": 20_500_000},
            "feature_present": {"is_char": 1, "node": "crw-r--r-- /dev/mem_notify"},
            "all_readers_told": {**common, "rc": rc, "stdout": "mnherd: ready"},
            "rounds_within_batch": common, "told_within_bound": common,
            "told_of_pressure": common}


def test_herd_good(tmp_path):
    c = judged("herd-bound", herd_meas(tmp_path, good_rounds()), tmp_path)
    assert {k: v.status for k, v in c.items()} == dict.fromkeys(c, "PASS")


def test_herd_round_too_large_fails(tmp_path):
    # everyone released at once: 1024 readers awake within 5 ms
    d = [i * 5.0 / N for i in range(N)]
    c = judged("herd-bound", herd_meas(tmp_path, d), tmp_path)
    assert c["rounds_within_batch"].status == "FAIL"
    assert c["all_readers_told"].status == "PASS"


def test_herd_two_batches_per_round_fails(tmp_path):
    d = [(i // (2 * BATCH)) * IV + 0.5 for i in range(N)]
    c = judged("herd-bound", herd_meas(tmp_path, d), tmp_path)
    assert c["rounds_within_batch"].status == "FAIL"


def test_herd_judge_batch_imposed(tmp_path):
    # rounds of 64 pass a batch of 64 but not the harness's 32
    d = [(i // 64) * IV + 0.5 for i in range(N)]
    m = herd_meas(tmp_path, d)
    m["rounds_within_batch"]["batch"] = 64
    assert judged("herd-bound", m, tmp_path, params={"batch": 64})["rounds_within_batch"].status == "PASS"
    assert judged("herd-bound", m, tmp_path, params={"batch": 64, "judge_batch": 32})[
        "rounds_within_batch"].status == "FAIL"


def test_herd_late_reader_fails_bound(tmp_path):
    d = good_rounds()
    d[-1] = 1500.0
    c = judged("herd-bound", herd_meas(tmp_path, d), tmp_path)
    assert c["told_within_bound"].status == "FAIL" and c["rounds_within_batch"].status == "PASS"


def test_herd_reader_missing_fails(tmp_path):
    c = judged("herd-bound", herd_meas(tmp_path, good_rounds()[:-1], rc=1), tmp_path)
    assert c["all_readers_told"].status == "FAIL" and c["told_within_bound"].status == "FAIL"


def test_herd_clear_record_fails(tmp_path):
    c = judged("herd-bound", herd_meas(tmp_path, good_rounds(), kinds=4), tmp_path)
    assert c["told_of_pressure"].status == "FAIL"


def test_herd_baseline_xfail_runs_calibration(tmp_path):
    m = herd_meas(tmp_path, good_rounds())
    meas = {"herd_calibration": m["herd_calibration"],
            "feature_present": {"is_char": 0, "node": "No such file or directory"},
            **{k: "feature absent" for k in ("all_readers_told", "rounds_within_batch",
                                             "told_within_bound", "told_of_pressure")}}
    c = judged("herd-bound", meas, tmp_path, kind="baseline")
    assert c["feature_present"].status == "XFAIL"
    assert c["herd_calibration"].status == "PASS"
    assert c["rounds_within_batch"].status == "SKIP"
    # the feature present on the unpatched kernel is a failure
    meas["feature_present"] = {"is_char": 1}
    assert judged("herd-bound", meas, tmp_path, kind="baseline")["feature_present"].status == "FAIL"


# ---------------------------------------------------------- notify-latency

T0 = 5_000_000_000


def latency_files(tmp, runs=2, stamp_off_ms=0.1, read_off_ms=0.5, clear=True, swap=True,
                  setup_missing=()):
    rows, ev = [], []
    for i in range(1, runs + 1):
        t0 = T0 + i * 20_000_000_000
        ref = t0 + 3_000_000_000
        t1 = t0 + 8_000_000_000
        rows.append(f"{i} {t0} {t1} {ref} {1000 * i} 0")
        kts = ref + int(stamp_off_ms * 1e6)
        if swap:
            ev.append(f"mem_notify {kts + int((read_off_ms - stamp_off_ms) * 1e6)} kind=1 level=1 "
                      f"seq={i} swapouts=1 kts={kts}")
        ev.append(f"psi-50ms {ref + 20_000_000} trigger fired")
        if clear and swap:
            ev.append(f"mem_notify {t1 + 600_000_000} kind=4 level=0 seq={i + 1} swapouts=9 kts={t1}")
    (tmp / "runs.txt").write_text("\n".join(rows) + "\n")
    (tmp / "listeners.log").write_text("\n".join(ev) + "\n")
    names = ["mem_notify", "psi-50ms", "psi-100ms", "psi-500ms", "vmpressure", "meminfo"]
    out = "".join(f"mnlisten: setup {n} ok\n" for n in names if n not in setup_missing)
    return {"feature_present": {"is_char": 1, "node": "crw-r--r--"},
            "listeners_started": {"requested": " ".join(names), "memcg_v1": "/tmp/memcg-v1",
                                  "alive": 1, "stdout": out + "mnlisten: ready 6 listeners",
                                  "exit_rc": 0},
            "swap_reference": {"trace_setup_rc": 0, "runs": "runs.txt"},
            "swap_event_in_window": {"runs": "runs.txt", "listeners": "listeners.log"},
            "clear_event": {"runs": "runs.txt", "listeners": "listeners.log"}}


def lat(tmp, **kw):
    return judged("notify-latency", latency_files(tmp, **kw), tmp, params={"runs": 2})


def test_latency_good(tmp_path):
    c = lat(tmp_path)
    assert all(v.status == "PASS" for v in c.values()), {k: v.detail for k, v in c.items()}
    # heard before the first write (the decision precedes it) is fine too
    assert lat(tmp_path, stamp_off_ms=-2, read_off_ms=-1)["swap_event_in_window"].status == "PASS"


@pytest.mark.parametrize("kw", [dict(stamp_off_ms=9), dict(stamp_off_ms=-80, read_off_ms=-79),
                                dict(stamp_off_ms=-3100, read_off_ms=-3000),
                                dict(stamp_off_ms=1, read_off_ms=0.5), dict(swap=False)])
def test_latency_bad_event(tmp_path, kw):
    """late stamp, far too early, before the hog started, read before its stamp, none"""
    assert lat(tmp_path, **kw)["swap_event_in_window"].status == "FAIL"


def test_latency_no_clear(tmp_path):
    assert lat(tmp_path, clear=False)["clear_event"].status == "FAIL"


def test_latency_listener_never_started(tmp_path):
    c = lat(tmp_path, setup_missing=("psi-50ms",))
    assert c["listeners_started"].status == "FAIL"


def test_latency_no_reference(tmp_path):
    m = latency_files(tmp_path)
    (tmp_path / "runs.txt").write_text((tmp_path / "runs.txt").read_text().replace(
        f" {T0 + 20_000_000_000 + 3_000_000_000} ", " 0 ", 1))
    c = judged("notify-latency", m, tmp_path, params={"runs": 2})
    assert c["swap_reference"].status == "FAIL"


def test_latency_vmpressure_missing_is_skip_or_strict_fail(tmp_path):
    m = latency_files(tmp_path)
    m["listeners_started"]["requested"] = "mem_notify psi-50ms psi-100ms psi-500ms meminfo"
    m["listeners_started"]["memcg_v1"] = "not mountable"
    assert judged("notify-latency", m, tmp_path, params={"runs": 2})[
        "listeners_started"].status == "SKIP"
    assert judged("notify-latency", m, tmp_path, params={"runs": 2}, strict=True)[
        "listeners_started"].status == "FAIL"


# ---------------------------------------------------------- cpuset-swap-kill

GOOD_RUNS = {
    "off": "global_pages=62885 writes=62885 job_pages=62885 a_swap_peak=250000000 b_swap_peak=0 "
           "hog1=0 hog2=0 sleeper_alive=1 a_left=1 b_alive=1 b_swapouts=0 a_kills=0",
    # the old flake: one hog killed before any write, the other finished without swapping
    "task": "global_pages=0 writes=0 job_pages=0 a_swap_peak=0 b_swap_peak=0 hog1=137 hog2=0 "
            "sleeper_alive=1 a_left=1 b_alive=1 b_swapouts=0 a_kills=1",
    "cpuset": "global_pages=1 writes=1 job_pages=1 a_swap_peak=4096 b_swap_peak=0 hog1=137 "
              "hog2=137 sleeper_alive=0 a_left=0 b_alive=1 b_swapouts=0 a_kills=1",
    "earlyoom": "global_pages=0 writes=0 job_pages=0 a_swap_peak=0 b_swap_peak=0 hog1=143 hog2=0 "
                "sleeper_alive=1 a_left=1 b_alive=1 b_swapouts= a_kills= earlyoom_alive=1",
}


def kill_meas(tmp, runs=None, earlyoom="/usr/bin/earlyoom"):
    runs = {**GOOD_RUNS, **(runs or {})}
    (tmp / "killrun.txt").write_text("".join(f"{p} {v}\n" for p, v in runs.items()))
    (tmp / "earlyoom.txt").write_text("earlyoom 1.7\nmem avail: ...\nsending SIGTERM to process\n")
    names = [c.name for c in SCN["cpuset-swap-kill"].checks if not c.probe]
    return {"feature_present": {"present": 1, "files": "cpuset.memory.swap_kill"},
            **{n: {"runs": "killrun.txt"} for n in names},
            "runs": {"earlyoom": earlyoom}}


def test_swap_kill_good(tmp_path):
    c = judged("cpuset-swap-kill", kill_meas(tmp_path), tmp_path)
    bad = {k: v.detail for k, v in c.items() if v.status != "PASS"}
    assert not bad, bad


def test_swap_kill_others_pages_do_not_count_against_the_job(tmp_path):
    """Tasks left in the root cgroup may be swapped while A's pages are kept:
    global pswpout and traced writes are context, A's own counts decide."""
    runs = {"task": GOOD_RUNS["task"].replace("global_pages=0", "global_pages=48")
            .replace("writes=0", "writes=51")}
    c = judged("cpuset-swap-kill", kill_meas(tmp_path, runs), tmp_path)
    assert c["task_kills_before_swap"].status == "PASS"


@pytest.mark.parametrize("check,policy,change", [
    # mainline's count of the job's swap slots over the bound
    ("task_kills_before_swap", "task", ("a_swap_peak=0", "a_swap_peak=135168")),
    ("task_kills_before_swap", "task", ("a_swap_peak=0", "a_swap_peak=")),  # not measured
    ("task_kills_before_swap", "task", ("job_pages=0", "job_pages=40")),
    ("task_kills_before_swap", "task", ("hog1=137", "hog1=0")),  # nobody killed
    ("task_kills_before_swap", "task", ("sleeper_alive=1", "sleeper_alive=0")),
    ("task_kills_before_swap", "task", ("hog2=0", "hog2=1")),  # another end
    ("cpuset_kills_whole_job", "cpuset", ("sleeper_alive=0", "sleeper_alive=1")),
    ("cpuset_kills_whole_job", "cpuset", ("job_pages=1", "job_pages=500")),
    ("off_job_swaps", "off", ("global_pages=62885", "global_pages=12")),
    ("kills_counted", "task", ("a_kills=1", "a_kills=0")),
    ("b_untouched", "task", ("b_swap_peak=0", "b_swap_peak=8192")),
    ("b_untouched", "cpuset", ("b_alive=1", "b_alive=0")),
    ("peer_earlyoom", "earlyoom", ("hog1=143", "hog1=0")),
])
def test_swap_kill_doctored(tmp_path, check, policy, change):
    runs = {policy: GOOD_RUNS[policy].replace(*change)}
    c = judged("cpuset-swap-kill", kill_meas(tmp_path, runs), tmp_path)
    assert c[check].status == "FAIL", c[check].detail


def test_swap_kill_earlyoom_missing(tmp_path):
    m = kill_meas(tmp_path, earlyoom="not installed")
    assert judged("cpuset-swap-kill", m, tmp_path)["peer_earlyoom"].status == "SKIP"
    assert judged("cpuset-swap-kill", m, tmp_path, strict=True)["peer_earlyoom"].status == "FAIL"


def test_swap_kill_negative_control_judges_off_as_task(tmp_path):
    m = kill_meas(tmp_path)
    c = judged("cpuset-swap-kill", m, tmp_path, params={"judge_as": {"task": "off"}})
    assert c["task_kills_before_swap"].status == "FAIL"


def test_cpuset_setup_failure_is_not_feature_absent(tmp_path):
    m = kill_meas(tmp_path)
    m["feature_present"] = {"present": 0, "setup_error": "mkdir: No space left on device"}
    c = judged("cpuset-swap-kill", m, tmp_path, kind="baseline")
    assert c["feature_present"].status == "FAIL"
    m["feature_present"] = {"present": 0, "files": "cpuset.cpus cpuset.mems"}
    c = judged("cpuset-swap-kill", m, tmp_path, kind="baseline")
    assert c["feature_present"].status == "XFAIL"


# ---------------------------------------------------------- mem-notify-abi

def abi_meas(bad_tries=None, mode="444"):
    bad = bad_tries or [f"mem_notify_batch|{v}|Invalid argument|32|32" for v in ("0", "-1", "abc")]
    return {"feature_present": {"is_char": 1},
            "kselftest_root": "selftest not built", "kselftest_user": "selftest not built",
            "sysctl_bad_values": {f"try{i}": t for i, t in enumerate(bad, 1)},
            "sysctl_good_values": {"try1": "mem_notify_batch|1||32|1"},
            "sysctl_unprivileged": {"try1": "mem_notify_batch|5|Permission denied|32|32"},
            "device_mode": {"mode": mode, "root_write_open": "Operation not permitted",
                            "user_write_open": "Permission denied", "user_read_open": ""}}


def test_abi_good_and_doctored(tmp_path):
    c = judged("mem-notify-abi", abi_meas(), tmp_path)
    assert all(c[k].status == "PASS" for k in ("sysctl_bad_values", "sysctl_good_values",
                                                "sysctl_unprivileged", "device_mode"))
    c = judged("mem-notify-abi", abi_meas(["mem_notify_batch|0||32|0"]), tmp_path)
    assert c["sysctl_bad_values"].status == "FAIL"  # accepted and changed
    assert judged("mem-notify-abi", abi_meas(mode="666"), tmp_path)["device_mode"].status == "FAIL"
    # a kselftest that could not be built is a SKIP, and in strict mode a FAIL
    assert c["kselftest_root"].status == "SKIP"
    assert judged("mem-notify-abi", abi_meas(), tmp_path, strict=True)[
        "kselftest_root"].status == "FAIL"


# ------------------------------------------------------------------ kselftests with required cases


def _ksft(tmp, lines, name="kselftest.txt"):
    (tmp / name).write_text(f"TAP version 13\n1..{len(lines)}\n" + "\n".join(lines) + "\n")
    return {"rc": 0, "log": name}


def _judge_required(tmp, lines):
    from harness import checks as ck

    judge = ck.kselftest_requiring(("swap_event", "clear_event"), "root, swap on")
    j = ck.Judging(m=_ksft(tmp, lines), all={}, params={}, rundir=tmp, kernel="patched", info={})
    return judge(j)


def test_kselftest_required_cases_ran(tmp_path):
    v = _judge_required(tmp_path, ["ok 1 open_rdonly", "ok 2 swap_event", "ok 3 clear_event"])
    assert v.status == "PASS"


def test_kselftest_required_case_skipped_fails(tmp_path):
    """A kselftest that skips its swap cases (no swap) passes ck.kselftest
    but not a check that requires them."""
    v = _judge_required(tmp_path, ["ok 1 open_rdonly", "ok 2 # SKIP swap_event: no swap active",
                                   "ok 3 # SKIP clear_event: no swap active"])
    assert v.status == "FAIL" and "swap_event, clear_event" in v.detail


def test_kselftest_required_case_failed_fails(tmp_path):
    v = _judge_required(tmp_path, ["ok 1 open_rdonly", "not ok 2 swap_event", "ok 3 clear_event"])
    assert v.status == "FAIL" and "1 failed" in v.detail
