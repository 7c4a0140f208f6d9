from pathlib import Path

from harness import ktap

DATA = Path(__file__).resolve().parent.parent / "data" / "ktap"


def test_parse_saved_guest_log():
    rep = ktap.parse((DATA / "boot-smoke-pass.log").read_text())
    assert rep.version == "KTAP 1"
    assert rep.plan == 3 and rep.complete
    assert [c.status for c in rep.cases] == ["PASS", "FAIL", "SKIP"]
    assert rep.cases[0].diagnostics == ["uname -r: 6.12.107-kexp; uname -v: #a4063f2d2d1e SMP"]
    assert rep.cases[1].diagnostics == ["CONFIG_PSI=y (running: n)"]
    assert rep.cases[2].directive == "SKIP no NUMA requested"
    assert rep.counts() == {"PASS": 1, "FAIL": 1, "SKIP": 1, "ERROR": 0}


def test_truncated_log_is_incomplete():
    rep = ktap.parse((DATA / "truncated.log").read_text())
    assert rep.plan == 4 and len(rep.cases) == 2 and not rep.complete


def test_no_ktap_at_all():
    rep = ktap.parse("just boot noise\nok 1 not ktap because no header\n")
    assert rep.version == "" and not rep.cases and not rep.complete


def test_kunit_nested_on_console_with_timestamps():
    rep = ktap.parse((DATA / "kunit-console.log").read_text())
    assert rep.plan == 1 and rep.complete
    suite = rep.cases[0]
    assert suite.name == "mem_notify" and suite.status == "FAIL"
    assert [(c.name, c.status) for c in suite.children] == [
        ("level_for_rate", "PASS"), ("batch_rounds", "FAIL")]


def test_find_all_documents():
    text = "KTAP version 1\n1..1\nok 1 a\nnoise\nKTAP version 1\n1..1\nnot ok 1 b\n"
    docs = ktap.find_all(text)
    assert [d.cases[0].status for d in docs] == ["PASS", "FAIL"]
