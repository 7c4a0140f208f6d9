"""bench.py's pure functions: statistics, comparisons, verdicts, tables (synthetic data)."""

import subprocess

import pytest

from harness import bench
from harness.tcgplugin import Counts

# ---------------------------------------------------------------- stats


def test_stats_small_sample_has_max_not_p99():
    s = bench.stats(range(1, 11))
    assert s["n"] == 10 and s["p50"] == 5.5 and s["min"] == 1 and s["max"] == 10
    assert s["p90"] == pytest.approx(9.1)
    assert s["p25"] == 3.25 and s["p75"] == 7.75 and s["spread"] == 4.5
    assert "p99" not in s


def test_stats_p99_from_100_samples():
    s = bench.stats(range(100))
    assert s["p99"] == pytest.approx(98.01) and s["max"] == 99


def test_stats_empty_and_dropped_values():
    e = bench.stats([])
    assert e["n"] == 0 and e["p50"] is None and e["spread"] is None
    s = bench.stats([None, float("nan"), 3])
    assert s["n"] == 1 and s["p50"] == s["max"] == s["min"] == 3 and s["spread"] == 0


def test_stats_signed_values():
    assert bench.stats([-2.0, 1.0, -0.5])["p50"] == -0.5


# ---------------------------------------------------------------- ratio or difference


def test_compare_uses_ratio_above_floor():
    c = bench.compare_to_ref(100.0, 2.0)
    assert c == {"kind": "ratio", "value": 50.0, "text": "50.0x"}


@pytest.mark.parametrize("ref", [0.4, 0.0, -1.0])
def test_compare_uses_difference_for_submillisecond_or_negative(ref):
    c = bench.compare_to_ref(100.0, ref)
    assert c["kind"] == "difference" and c["value"] == pytest.approx(100.0 - ref)
    assert c["text"].endswith(" ms") and c["text"].startswith("+")


def test_compare_never_woke():
    assert bench.compare_to_ref(None, 2.0)["text"] == "never woke"
    assert bench.compare_to_ref(5.0, None)["kind"] == "none"


# ---------------------------------------------------------------- latency table

PARAMS = {"runs": 5, "psi_windows_us": [50000, 100000, 500000]}


def _lat():
    return {
        "mem_notify": {"runs": 5, "heard": 5, "early_wakeups": 0,
                       "samples_ms": [-0.2, 0.1, 0.3, 0.2, 0.05], "delivery_ms": [0.1] * 5},
        "psi-50ms": {"runs": 5, "heard": 4, "early_wakeups": 1, "samples_ms": [60, 70, 80, 90]},
        "meminfo": {"runs": 5, "heard": 5, "early_wakeups": 0, "samples_ms": [50, 60, 70, 80, 90]},
    }


def test_latency_every_configured_listener_has_a_row():
    t, d, plot = bench.latency_section(_lat(), PARAMS)
    names = [r[0] for r in t["rows"]]
    assert names == ["mem_notify", "psi-50ms", "psi-100ms", "psi-500ms", "vmpressure", "meminfo"]
    row = {r[0]: r for r in t["rows"]}
    assert row["psi-100ms"][1] == "never woke (0/5)"
    assert row["psi-100ms"][-1] == "never woke"
    assert row["psi-50ms"][1] == "4/5"
    assert set(plot["series"]) == {"mem_notify", "psi-50ms", "meminfo"} and plot["type"] == "cdf"


def test_latency_columns_say_max_and_difference_used():
    t, d, _ = bench.latency_section(_lat(), PARAMS)
    assert t["columns"] == ["listener", "woke", "early", "n", "p50 ms", "p90 ms", "max ms",
                            "min ms", "IQR ms", "vs mem_notify (p50)"]
    assert d["comparison"] == "difference"  # mem_notify p50 0.1 ms: no ratio
    assert "difference of p50s" in t["note"]
    row = {r[0]: r for r in t["rows"]}
    assert row["psi-50ms"][-1] == "+74.9 ms"  # 75 - 0.1
    assert d["listeners"]["mem_notify"]["delivery_stats_ms"]["p50"] == pytest.approx(0.1)
    assert "delivery" in t["note"]


def test_latency_ratio_when_mem_notify_slow_enough():
    lat = _lat()
    lat["mem_notify"]["samples_ms"] = [2.0, 2.0, 3.0]
    t, d, _ = bench.latency_section(lat, PARAMS)
    assert d["comparison"] == "ratio"
    assert {r[0]: r for r in t["rows"]}["meminfo"][-1] == "35.0x"


def test_latency_p99_column_only_from_100_samples():
    lat = {"mem_notify": {"runs": 100, "heard": 100, "samples_ms": [1.0] * 100}}
    t, _, _ = bench.latency_section(lat, {"runs": 100})
    assert "p99 ms" in t["columns"]


def test_latency_underscore_psi_names_do_not_duplicate():
    lat = {"psi_50000us": {"runs": 5, "heard": 1, "samples_ms": [70]}}
    t, _, _ = bench.latency_section(lat, PARAMS)
    names = [r[0] for r in t["rows"]]
    assert "psi_50000us" in names and "psi_100000us" in names and "psi-50ms" not in names
    assert len(names) == len(set(names))


def test_latency_listener_that_did_not_start():
    setup = {"mem_notify": "ok", "psi-50ms": "ok", "psi-100ms": "ok", "psi-500ms": "ok",
             "meminfo": "ok"}
    t, _, _ = bench.latency_section(_lat(), PARAMS, setup)
    row = {r[0]: r for r in t["rows"]}
    assert row["vmpressure"][1].startswith("not started")
    assert row["psi-500ms"][1] == "never woke (0/5)"


# ---------------------------------------------------------------- noise floor


def test_verdict_below_aa_floor():
    v = bench.noise_verdict([10.1, 10.2, 10.3], [10.0, 10.1, 10.2], [10.4, 10.5, 10.6])
    assert v["difference"] == pytest.approx(0.1)
    assert v["aa_difference"] == pytest.approx(0.4)
    assert v["verdict"] == "below the noise floor"


def test_verdict_below_combined_spread():
    # A/A identical, but the samples scatter more than the difference
    v = bench.noise_verdict([9, 10.5, 12], [8, 10, 12], [8, 10, 12])
    assert v["aa_difference"] == 0 and v["combined_spread"] == pytest.approx((1.5 + 2) / 2)
    assert v["verdict"] == "below the noise floor"


def test_verdict_above():
    v = bench.noise_verdict([12.0, 12.1, 12.2], [10.0, 10.05, 10.1], [10.02, 10.07, 10.12])
    assert v["verdict"].startswith("above the noise floor: patched slower by 2.05 s")
    assert v["percent"] == pytest.approx(100 * 2.05 / 10.05)
    v = bench.noise_verdict([8.0], [10.0], [10.0], unit="insns/page", words=("more", "fewer"))
    assert "patched fewer by 2 insns/page" in v["verdict"]


def test_verdict_without_aa_or_data():
    v = bench.noise_verdict([12.0], [10.0])
    assert v["aa_difference"] is None and "no A/A" in v["verdict"]
    assert bench.noise_verdict([], [1.0])["verdict"] == "not measured"


def test_cost_table():
    t, d = bench.cost_section({"patched": [10.1, 10.2], "baseline": [10.0, 10.1],
                               "baseline_aa": [10.3, 10.4]}, {"patched": 1, "baseline": 1,
                                                              "baseline_aa": 1})
    assert t["columns"][:4] == ["kernel", "boots", "n", "median s"]
    assert [r[0] for r in t["rows"]] == ["patched (feature idle)", "baseline",
                                         "baseline again (A/A)"]
    assert "below the noise floor" in t["note"] and d["verdict"] == "below the noise floor"
    assert t["rows"][0][-1] == "+1.00%"


# ---------------------------------------------------------------- cpuset kill runs


def test_kill_summary_median_range_and_kills():
    boots = [
        {"off": {"pages": 900, "all_pages": 950, "anon_writes": 940, "job_killed": False,
                 "seconds": "2000ms"},
         "task": {"pages": 3, "all_pages": 5, "anon_writes": 4, "job_killed": True, "seconds": "100"}},
        {"off": {"pages": 1000, "all_pages": 1100, "anon_writes": 1000, "job_killed": False,
                 "seconds": "2100ms"},
         "task": {"pages": 0, "all_pages": 2, "anon_writes": 1, "job_killed": True, "seconds": "90"}},
        {"task": {"pages": 7, "all_pages": 9, "anon_writes": 8, "job_killed": False, "seconds": ""}},
    ]
    s = bench.kill_summary(boots)
    assert s["off"]["runs"] == 2 and s["off"]["pages_stats"]["p50"] == 950
    assert s["task"]["runs"] == 3 and s["task"]["killed"] == 2
    assert (s["task"]["pages_stats"]["min"], s["task"]["pages_stats"]["max"]) == (0, 7)
    assert s["task"]["ms_stats"]["p50"] == 95
    t = bench.kill_table(s, 3)
    row = {r[0]: r for r in t["rows"]}
    assert row["task"][1:4] == [3, "3.0", "0-7"] and row["task"][6] == "2/3"


# ---------------------------------------------------------------- instruction counts


def test_insn_guest_script_renders_and_parses():
    for mode in bench.INSN_MODES:
        s = bench.insn_guest_script(mode, "/t", "/o d", "/dev/vda", 3, 512, 2)
        assert "{" + "mode}" not in s and f"case {mode} in" in s
        assert s.count("\nsync\n") == 1 and "\tsync\n" in s
        assert "'/o d'" in s
        r = subprocess.run(["bash", "-n"], input=s, text=True, capture_output=True)
        assert r.returncode == 0, r.stderr
    with pytest.raises(ValueError):
        bench.insn_guest_script("bogus", "/t", "/o", "/dev/vda", 1, 1, 1)


def _counts():
    c = Counts(vcpus=1, kernel=10_000)
    c.ranges = {"__mem_notify_swapout": {}, "mem_notify_raise": {}}
    c.marks = [
        {"kernel": 100, "insns": {"__mem_notify_swapout": 0, "mem_notify_raise": 0},
         "calls": {"__mem_notify_swapout": 0, "mem_notify_raise": 0}},
        {"kernel": 1100, "insns": {"__mem_notify_swapout": 500, "mem_notify_raise": 20},
         "calls": {"__mem_notify_swapout": 10, "mem_notify_raise": 1}},
        {"kernel": 3100, "insns": {"__mem_notify_swapout": 1500, "mem_notify_raise": 20},
         "calls": {"__mem_notify_swapout": 30, "mem_notify_raise": 1}},
    ]
    return c


def test_insn_per_rep_windows():
    reps = bench.parse_insn_reps("1 100 110 0\n2 110 130 0\n")
    assert reps == [{"rep": 1, "pages": 10, "rc": 0}, {"rep": 2, "pages": 20, "rc": 0}]
    per = bench.insn_per_rep(_counts(), reps)
    assert per[0]["kernel"] == 1000 and per[0]["series"] == 520 and per[0]["hook_calls"] == 10
    assert per[0]["kernel_per_page"] == 100 and per[0]["series_per_page"] == 52
    assert per[1]["kernel_per_page"] == 100 and per[1]["hook_calls_per_page"] == 1.0
    assert bench.insn_per_rep(_counts(), [{"rep": 1, "pages": 0, "rc": 0}])[0]["kernel_per_page"] is None


def test_insn_section_tables_and_verdict():
    def reps(kpp, spp=0.0, insns=None):
        return [{"rep": i + 1, "pages": 1000, "kernel": k * 1000, "series": spp * 1000,
                 "hook_calls": 0, "insns": insns or {}, "kernel_per_page": k,
                 "series_per_page": spp, "hook_calls_per_page": 0.0} for i, k in enumerate(kpp)]

    per_boot = {("patched", "idle"): reps([5000, 5010, 5020]),
                ("patched", "reader"): reps([5400, 5410], 180.0, {"__mem_notify_swapout": 150000,
                                                                  "mem_notify_raise": 30000}),
                ("baseline", "idle"): reps([4990, 5000, 5010]),
                ("baseline", "idle-aa"): reps([5030, 5040, 5050])}
    (t1, t2), d, plot = bench.insn_section(per_boot, 42)
    assert t1["columns"] == ["kernel / listeners", "reps", "pages/rep", "series insns/page",
                             "series insns/page min-max", "hook entries/page", "kernel insns/page",
                             "kernel insns/page IQR"]
    assert len(t1["rows"]) == 4  # no cpuset boot: no row
    assert d["kernel_per_page_verdict"]["verdict"] == "below the noise floor"
    assert "42 functions" in t1["note"]
    assert t2["rows"][0][0] == "__mem_notify_swapout" and t2["rows"][0][2] == "150.00"
    assert plot["type"] == "bar" and plot["values"][0][1] == 5010.0


# ---------------------------------------------------------------- rendering


def test_render_table_and_none_cells():
    t = bench.table("T", ["a", "bb"], [[1, None], ["xyz", 2]], "a note")
    assert t["rows"][0] == [1, "-"]
    txt = bench.render(t)
    assert txt.splitlines()[0] == "== T ==" and txt.endswith("a note")
    assert "(no data)" in bench.render(bench.table("E", ["a"], []))


def test_write_report_is_guarded(tmp_path, monkeypatch):
    from harness import report

    monkeypatch.delattr(report, "write_bench_html", raising=False)
    bench.write_report({"title": "t", "started": "s", "kernels": {}, "tables": [], "plots": {}},
                       tmp_path / "report.html")  # logs, does not raise


def test_counting_boot_crash_reads_as_crash():
    """A panic or oops of the kernel under test in a counting boot (insn,
    alloc) is CRASH, not ERROR; a clean console leaves the result alone."""
    from types import SimpleNamespace

    from harness import bench, results

    oops = "[  3.1] BUG: unable to handle page fault for address: 0000000000000008\n[  3.1] Oops: 0000 [#1]\n"
    res = results.ScenarioResult("alloc-insn", "patched", "ERROR")
    assert bench._crashed(res, SimpleNamespace(console=oops, panicked=False))
    assert res.outcome == "CRASH" and res.splats
    res = results.ScenarioResult("alloc-insn", "patched", "ERROR")
    assert bench._crashed(res, SimpleNamespace(console="", panicked=True))
    res = results.ScenarioResult("alloc-insn", "patched", "ERROR")
    assert not bench._crashed(res, SimpleNamespace(console="[  1.0] booted\n", panicked=False))
    assert res.outcome == "ERROR" and not res.splats
