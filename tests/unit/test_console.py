from pathlib import Path

from harness import console

DATA = Path(__file__).resolve().parent.parent / "data" / "console"


def kinds(text, **kw):
    return [s.kind for s in console.scan(text, **kw)]


def test_every_splat_kind_found_once():
    text = (DATA / "oom-and-warn.log").read_text()
    assert kinds(text) == ["oom_kill", "oom_kill", "warning", "hung_task", "rcu_stall",
                           "kasan", "lockdep", "oops", "oops"]


def test_expected_oom_is_allowed():
    text = (DATA / "oom-and-warn.log").read_text()
    got = kinds(text, allow={"oom_kill"})
    assert "oom_kill" not in got and "warning" in got


def test_allow_pattern_exempts_one_splat():
    text = (DATA / "oom-and-warn.log").read_text()
    got = console.scan(text, allow={"oom_kill"}, allow_patterns=(r"mm/vmscan\.c:1285",))
    assert "warning" not in [s.kind for s in got]


def test_clean_console():
    assert kinds("[    0.0] Linux version 6.12.107-kexp\n[  1.0] Run /init as init process\n") == []


def test_context_is_kept():
    s = console.scan((DATA / "oom-and-warn.log").read_text(), allow={"oom_kill"})[0]
    assert s.kind == "warning" and "Modules linked in" in s.context and s.line_no == 4
