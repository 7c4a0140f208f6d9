import json
import xml.etree.ElementTree as ET

from harness import results
from harness.results import Check, ScenarioResult


def r(outcome, checks=(), **kw):
    return ScenarioResult("s", "patched", outcome, checks=list(checks), **kw)


def test_decide():
    P, F, S, X = (Check("a", "PASS"), Check("b", "FAIL"), Check("c", "SKIP"), Check("d", "XFAIL"))
    assert results.decide([P, S], []) == "PASS"
    assert results.decide([P, F], []) == "FAIL"
    assert results.decide([P], [{"kind": "warning"}]) == "FAIL"  # a splat fails a passing run
    assert results.decide([S, S], []) == "SKIP"
    assert results.decide([], []) == "ERROR"  # no verdict at all is infrastructure
    assert results.decide([P], [], error="boot: lost") == "ERROR"
    assert results.decide([X, P, S], []) == "XFAIL"  # feature absent, the rest fine
    assert results.decide([X, F], []) == "FAIL"  # a non-feature check still fails
    assert results.decide([P], [{"kind": "oops"}]) == "CRASH"
    assert results.decide([P], [{"kind": "hung_task"}]) == "CRASH"
    assert results.decide([P], [], crash="kernel panic") == "CRASH"
    assert results.decide([Check("e", "ERROR"), P], []) == "ERROR"


def test_exit_codes():
    assert results.exit_code([]) == 0
    assert results.exit_code([r("PASS"), r("SKIP"), r("XFAIL")]) == 0
    assert results.exit_code([r("PASS"), r("FAIL")]) == 1
    assert results.exit_code([r("PASS"), r("CRASH")]) == 1
    assert results.exit_code([r("FAIL"), r("ERROR")]) == 2  # ERROR wins
    assert results.exit_code([r("CRASH"), r("ERROR")]) == 2


def test_json_junit_table(tmp_path):
    res = [r("PASS", [Check("a", "PASS", values={"n": 3}, bound="> 0")], seconds=3),
           r("FAIL", [Check("b", "FAIL", "pswpout 0 -> 0", ["pswpout 0 -> 0"])]),
           ScenarioResult("x", "baseline", "XFAIL", [Check("feature_present", "XFAIL", "absent")]),
           r("CRASH", [Check("a", "PASS")], crash="oops: Oops: 0000"),
           ScenarioResult("t", "baseline", "ERROR", error="boot: no verdict after 600s")]
    rec = results.RunRecord("20260101-000000", {"patched": {"release": "6.12.107-kexp"}}, res, "cmd")
    results.write_json(rec, tmp_path / "results.json")
    d = json.loads((tmp_path / "results.json").read_text())
    assert d["exit_code"] == 2
    assert d["summary"] == {"PASS": 1, "XFAIL": 1, "SKIP": 0, "FAIL": 1, "CRASH": 1, "ERROR": 1}
    assert d["results"][0]["checks"][0]["values"] == {"n": 3}
    results.write_junit(rec, tmp_path / "junit.xml")
    root = ET.parse(tmp_path / "junit.xml").getroot()
    fails = root.findall(".//failure")
    assert len(fails) == 2 and {f.get("type") for f in fails} == {None, "crash"}
    assert len(root.findall(".//error")) == 1
    # the expected absence is a passing testcase
    xcase = [tc for tc in root.iter("testcase") if tc.get("name") == "feature_present"][0]
    assert xcase.find("failure") is None and xcase.find("error") is None
    t = results.table(res)
    assert "PASS 1, XFAIL 1, SKIP 0, FAIL 1, CRASH 1, ERROR 1; exit code 2" in t
    assert "failed: b" in t and "as expected" in t and "crash: oops" in t
