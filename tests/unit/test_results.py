import json
import xml.etree.ElementTree as ET

from harness import results
from harness.results import Check, ScenarioResult


def r(outcome, checks=(), **kw):
    return ScenarioResult("s", "patched", outcome, checks=list(checks), **kw)


def test_decide():
    P, F, S = (Check("a", "PASS"), Check("b", "FAIL"), Check("c", "SKIP"))
    assert results.decide([P, S], []) == "PASS"
    assert results.decide([P, F], []) == "FAIL"
    assert results.decide([P], [{"kind": "warning"}]) == "FAIL"  # a splat fails a passing run
    assert results.decide([S, S], []) == "SKIP"
    assert results.decide([], []) == "ERROR"  # no verdict at all is infrastructure
    assert results.decide([P], [], error="boot: lost") == "ERROR"


def test_exit_codes_error_wins():
    assert results.exit_code([]) == 0
    assert results.exit_code([r("PASS"), r("SKIP")]) == 0
    assert results.exit_code([r("PASS"), r("FAIL")]) == 1
    assert results.exit_code([r("FAIL"), r("ERROR")]) == 2


def test_json_junit_table(tmp_path):
    res = [r("PASS", [Check("a", "PASS")], seconds=3),
           r("FAIL", [Check("b", "FAIL", "pswpout 0 -> 0", ["pswpout 0 -> 0"])]),
           ScenarioResult("t", "baseline", "ERROR", error="boot: no verdict after 600s")]
    rec = results.RunRecord("20260101-000000", {"patched": {"release": "6.12.107-kexp"}}, res, "cmd")
    results.write_json(rec, tmp_path / "results.json")
    d = json.loads((tmp_path / "results.json").read_text())
    assert d["exit_code"] == 2 and d["summary"] == {"PASS": 1, "FAIL": 1, "SKIP": 0, "ERROR": 1}
    assert d["kernel"]["patched"]["release"] == "6.12.107-kexp"
    results.write_junit(rec, tmp_path / "junit.xml")
    root = ET.parse(tmp_path / "junit.xml").getroot()
    assert len(root.findall(".//failure")) == 1 and len(root.findall(".//error")) == 1
    t = results.table(res)
    assert "PASS 1, FAIL 1, SKIP 0, ERROR 1" in t and "failed: b" in t
    miss = ScenarioResult("m", "baseline", "FAIL", [Check("feature_present", "FAIL")], feature_missing=True)
    assert "FAIL 0" in results.table([miss]) and "as expected: 1" in results.table([miss])
    results.write_html(rec, tmp_path / "report.html")
    assert "ERROR" in (tmp_path / "report.html").read_text()
