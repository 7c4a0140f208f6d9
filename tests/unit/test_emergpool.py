"""emergpool judges, fed a recorded real run: the run passes, and each doctored
copy fails the check it should (every check can fail)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from harness import scenario
from harness.scenarios import all_scenarios
from harness.scenarios import emergpool as ep

REC = Path(__file__).resolve().parent.parent / "data" / "runs" / "emergpool"
SCN = all_scenarios()["emergpool"]


def judged(d: Path, kind: str = "patched") -> dict:
    res = scenario.rejudge(SCN, kind, d)
    return {c.name: c for c in res.checks}


@pytest.fixture
def run(tmp_path) -> Path:
    d = tmp_path / "patched"
    shutil.copytree(REC / "patched", d)
    return d


def edit(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, count))


def sub(path: Path, pattern: str, repl: str) -> None:
    text, n = re.subn(pattern, repl, path.read_text(), count=1)
    assert n, pattern
    path.write_text(text)


def test_recorded_run_passes(run):
    got = judged(run)
    assert {n: c.status for n, c in got.items()} == dict.fromkeys(got, "PASS"), \
        {n: c.detail for n, c in got.items() if c.status != "PASS"}


def test_figures_parsed_from_the_kernel_log(run):
    log = (run / "kunit-dmesg.txt").read_text()
    rows = ep.exclusivity_rows(log)
    assert {(r["flag"], r["mode"]) for r in rows} >= {("memalloc", "single"), ("memalloc", "churn"),
                                                       ("memalloc", "bulk"), ("emergpool", "single")}
    f = ep.exhaustion_figures(log)
    assert f["from_pool"] == f["pool_free"] > 0 and f["free_after"] == 0


def test_a_reserve_object_given_to_an_ordinary_caller_fails(run):
    sub(run / "kunit-dmesg.txt", r"(memalloc churn: ordinary \d+ from-pfmemalloc )0", r"\g<1>9999")
    assert judged(run)["exclusivity"].status == "FAIL"


def test_an_ordinary_page_from_the_pool_fails(run):
    sub(run / "kunit-dmesg.txt", r"ordinary pages from pool 0", "ordinary pages from pool 3")
    assert judged(run)["exclusivity"].status == "FAIL"


def test_emergpool_slab_cases_missing_fails(run):
    p = run / "kunit-dmesg.txt"
    p.write_text("\n".join(ln for ln in p.read_text().splitlines() if "emergpool single" not in ln
                           and "emergpool churn" not in ln))
    assert judged(run)["exclusivity"].status == "FAIL"


def test_a_reserve_case_that_made_no_reserve_slab_fails(run):
    sub(run / "kunit-dmesg.txt", r"(memalloc single: .*reserve 1 from-pfmemalloc )1", r"\g<1>0")
    assert judged(run)["exclusivity"].status == "FAIL"


@pytest.mark.parametrize("pattern,repl", [
    (r"from pool (\d+)", "from pool 5"),                       # not every pool page served
    (r"pool free after \d+", "pool free after 12"),            # pool not empty at the end
    (r"fail \+\d+", "fail +0"),                                # empty pool not counted
    (r"refill \+\d+", "refill +1"),                            # refills not counted
    (r"pool free back \d+", "pool free back 3"),               # pool not refilled
])
def test_exhaustion_doctored_fails(run, pattern, repl):
    sub(run / "kunit-dmesg.txt", pattern, repl)
    assert judged(run)["exhaustion"].status == "FAIL"


def test_exhaustion_figures_missing_fails(run):
    p = run / "kunit-dmesg.txt"
    p.write_text("\n".join(ln for ln in p.read_text().splitlines() if "exhaustion:" not in ln))
    assert judged(run)["exhaustion"].status == "FAIL"


def test_kunit_case_failure_fails(run):
    sub(run / "kunit-dmesg.txt", r"\bok (\d+) emergpool_test_exhaustion",
        r"not ok \1 emergpool_test_exhaustion")
    assert judged(run)["kunit_emergpool"].status == "FAIL"


def _meas(run: Path, key: str) -> str:
    m = re.search(rf"^# kexp-m sysctl_pool {key}=(.*)$", (run / "ktap.log").read_text(), re.M)
    assert m, key
    return m.group(1)


def test_pool_that_took_no_memory_fails(run):
    # the pool grew on paper, but the memory stayed free: not taken out of buddy
    before = _meas(run, "before_meminfo")
    edit(run / "ktap.log", f"grown_meminfo={_meas(run, 'grown_meminfo')}", f"grown_meminfo={before}")
    assert judged(run)["sysctl_pool"].status == "FAIL"


def test_pool_that_did_not_grow_fails(run):
    edit(run / "ktap.log", f"grown_proc={_meas(run, 'grown_proc')}",
         f"grown_proc={_meas(run, 'before_proc')}")
    assert judged(run)["sysctl_pool"].status == "FAIL"


def test_pool_that_did_not_shrink_fails(run):
    edit(run / "ktap.log", f"shrunk_proc={_meas(run, 'shrunk_proc')}",
         f"shrunk_proc={_meas(run, 'grown_proc')}")
    assert judged(run)["sysctl_pool"].status == "FAIL"


def test_bad_value_accepted_fails(run):
    sub(run / "ktap.log", r"(sysctl_bad_values try1=emergpool_kbytes\|-1\|)[^|]*\|", r"\1|")
    assert judged(run)["sysctl_bad_values"].status == "FAIL"


def test_root_without_cap_sys_admin_accepted_fails(run):
    sub(run / "ktap.log", r"(sysctl_unprivileged try2=nocap\|4096\|)[^|]*\|(\d+)\|\d+",
        r"\1|\2|4096")
    assert judged(run)["sysctl_unprivileged"].status == "FAIL"


def test_world_writable_proc_file_fails(run):
    sub(run / "ktap.log", r"proc_mode=444", "proc_mode=666")
    assert judged(run)["sysctl_unprivileged"].status == "FAIL"


def test_baseline_shows_the_feature_absent():
    d = REC / "baseline"
    res = scenario.rejudge(SCN, "baseline", d)
    got = {c.name: c.status for c in res.checks}
    assert got["feature_present"] == "XFAIL"
    assert all(s == "SKIP" for n, s in got.items() if n != "feature_present")


def test_mainline_slub_figures_from_the_probe_kernel(tmp_path):
    """v6.12's SLUB with only the test applied (patches/probe): the counts
    the bench reports beside the series' zeros, as recorded on this machine."""
    log = (REC.parent.parent / "kunit" / "slub-pfmemalloc-v6.12-probe.txt").read_text()
    rows = {r["mode"]: r for r in ep.exclusivity_rows(log)}
    assert {m: rows[m]["ordinary_pf"] for m in rows} == {"single": 63, "churn": 10000, "bulk": 63}
    meas = {"log": "kunit-dmesg.txt"}
    (tmp_path / "kunit-dmesg.txt").write_text(log)
    from harness.checks import Judging

    j = Judging(m=meas, all={}, params={}, rundir=tmp_path, kernel="probe")
    assert ep.j_slub_figures(j).status == "PASS"
    (tmp_path / "kunit-dmesg.txt").write_text(log.replace("reserve 1 from-pfmemalloc 1", "reserve 1 "
                                                          "from-pfmemalloc 0", 1))
    assert ep.j_slub_figures(j).status == "FAIL"
