from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from harness import report, results
from harness.results import Check, RunRecord, ScenarioResult

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

KERNELS = {
    "patched": {"kind": "patched", "release": "6.12.107-kexp+", "version": "6.12.107",
                "base": "3f1e0c2b9a8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f",
                "head": "a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0", "series_hash": "5e2c91d0aa17b3f4c8e6",
                "config_hash": "c0ffee1234567890abcdef", "origin": "debian", "image": "/x/bzImage",
                "out": "/x", "src": "/y", "debug": False},
    "baseline": {"kind": "baseline", "release": "6.12.107-kexp", "version": "6.12.107",
                 "base": "3f1e0c2b9a8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f",
                 "head": "3f1e0c2b9a8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f", "series_hash": "none",
                 "config_hash": "beefbeef00112233445566", "origin": "debian", "image": "/x/bzImage",
                 "out": "/x", "src": "/y", "debug": True},
}

PLOTS = {
    "p99 delay": {"type": "bar", "unit": "ms", "values": [["mem_notify", 0.6], ["psi_50ms", 110.0],
                                                          ["vmpressure", None]]},
    "delay CDF": {"type": "cdf", "unit": "ms", "log": True, "total": {"mem_notify": 5, "vmpressure": 5},
                  "series": {"mem_notify": [-0.4, -0.1, 0.2, 0.5, 1.5], "psi_50ms": [12, 40, 90, 110],
                             "vmpressure": []}},
    "log CDF": {"type": "cdf", "unit": "ms", "series": {"a": [0.5, 3, 40, 600], "b": [1, 2]}},
    "memory over time": {"type": "timeline", "unit": "MB", "x_unit": "s",
                         "series": {"MemAvailable": [[0, 400], [1, 380], [2, None], [3, 200]],
                                    "SwapUsed": [[0, 0], [3, 120]], "empty": []},
                         "events": [[1.5, "first swap write"], [1.6, "mem_notify"], [2.9, "psi"]]},
    "pages per run": {"type": "grouped", "unit": "pages",
                      "groups": {"off": {"run 1": 60000, "run 2": 61000}, "cpuset": {"run 1": 2100,
                                                                                      "run 2": None}}},
    "pages per policy": {"type": "dots", "unit": "pages", "note": "five runs each",
                         "series": {"off": [60000, 61000, 59000], "cpuset": [2100, 2000, None],
                                    "never": [None, None], "empty": []}},
    "untyped": {"unit": "ms", "values": [("x", 1), ("y", 2)]},  # type defaults to bar
}


def _record() -> RunRecord:
    def run(scn, kind, outcome, checks=(), **kw):
        return ScenarioResult(scn, kind, outcome, checks=list(checks), seconds=12.0, boot_seconds=3.0,
                              accel="kvm", rundir=f"/runs/1/{scn}/{kind}",
                              reproducer=f"python -m harness run {scn}", **kw)

    res = [
        run("boot-smoke", "patched", "PASS",
            [Check("booted", "PASS", "reached userspace", values={"boot_s": 4.12, "ok": True},
                   bound="< 60 s", doc="the kernel boots")]),
        run("notify-latency", "patched", "PASS",
            [Check("p99", "PASS", "p99 0.61 ms", values={"p99_ms": 0.61, "ratio": 1.0042,
                                                          "samples": list(range(20))},
                   bound="p99 <= 5 ms", doc="delay to wake-up")],
            metrics={"plots": PLOTS, "latency": {"mem_notify": {"runs": 5, "heard": 5, "p50_ms": 0.2},
                                                 "vmpressure": {"runs": 5, "heard": 0, "p50_ms": None}},
                     "rounds": 12}),
        run("notify-latency", "baseline", "XFAIL",
            [Check("present", "XFAIL", "feature absent"), Check("peers", "PASS", "heard")]),
        run("herd", "baseline", "SKIP", [Check("tool", "SKIP", "tool missing")]),
        run("cpuset-swap-kill", "patched", "FAIL",
            [Check("off-never-kills", "FAIL", "killed <script>alert(1)</script> & more",
                   values={"hog1": "137", "<b>k</b>": "<i>v</i>"}, bound="job survives <here>",
                   diagnostics=["dmesg: Out of memory"], doc="swap_kill=off <keeps> the job")]),
        run("herd", "patched", "CRASH", [Check("rounds", "PASS", "12")],
            crash="panic: Kernel panic - not syncing: <oops>",
            splats=[{"kind": "panic", "line": "Kernel panic - not syncing: x",
                     "context": "Call Trace:\n <TASK>\n mem_notify_release+0x9a/0xa0\n </TASK>"}]),
        run("cpuset-swap-kill", "baseline", "ERROR", error="qemu: no verdict after 600 s\n<details>"),
    ]
    return RunRecord("20260314-101522", KERNELS, res, "python -m harness run --both <all>",
                     host={"machine": "box", "python": "3.11"})


class Balance(HTMLParser):
    """Every non-void element closed in order; counts svg elements."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.svgs = 0
        self.errors: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "svg":
            self.svgs += 1
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        if tag == "svg":
            self.svgs += 1

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}> "
                               f"at {self.getpos()}")
            if tag in self.stack:
                while self.stack.pop() != tag:
                    pass
        else:
            self.stack.pop()


def balanced(text: str) -> Balance:
    b = Balance()
    b.feed(text)
    b.close()
    assert not b.errors, b.errors[:5]
    assert b.stack == [], b.stack
    return b


@pytest.fixture
def page(tmp_path):
    rec = _record()
    p = tmp_path / "report.html"
    results.write_html(rec, p)  # the entry point the harness calls
    return p.read_text()


def test_page_is_balanced_and_has_every_plot(page):
    b = balanced(page)
    assert b.svgs == len(PLOTS)
    assert "plot not drawn" not in page
    for w in re.findall(r'<svg[^>]* width="(\d+)"', page):
        assert int(w) < 800
    assert "<script" not in page.replace("&lt;script", "")  # no scripts at all
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page


def test_outcomes_summary_and_exit_code(page):
    for o in results.OUTCOMES:
        assert f">{o}</span>" in page
    assert "exit code 2" in page
    assert "7 scenario runs" in page
    # patched and baseline of one scenario side by side, scenarios in first-run order
    order = re.findall(r'<td class="scn"><a href="#run-\d+">([^<]+)</a></td><td>(\w+)</td>', page)
    assert order == [("boot-smoke", "patched"), ("notify-latency", "patched"),
                     ("notify-latency", "baseline"), ("herd", "patched"), ("herd", "baseline"),
                     ("cpuset-swap-kill", "patched"), ("cpuset-swap-kill", "baseline")]


def test_xfail_is_a_success_not_a_failure(page):
    rows = re.findall(r'<tr class="r-XFAIL">.*?</tr>', page)
    assert rows and "feature absent, as expected" in rows[0]
    fail_fg, fail_bg = report.OUTCOME_COLORS["FAIL"]
    crash_fg, crash_bg = report.OUTCOME_COLORS["CRASH"]
    css = re.search(r"\.o-XFAIL\{([^}]*)\}", page).group(1)
    for c in (fail_fg, fail_bg, crash_bg):
        assert c.lower() not in css.lower()
        assert c.lower() not in rows[0].lower()
    assert "o-FAIL" not in rows[0] and "r-FAIL" not in rows[0]


def test_kernel_record_is_a_table_not_json(page):
    assert '{"release"' not in page and "{'release'" not in page and "&#x27;release&#x27;" not in page
    assert "<code>6.12.107-kexp+</code>" in page
    # commits abbreviated to 12, the full id only as a tooltip
    assert ">a9b8c7d6e5f4<" in page and ">a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0<" not in page
    assert ">3f1e0c2b9a8d<" in page and ">c0ffee123456<" in page
    assert "(debug)" in page and "kvm" in page


def test_details_escaped_and_open_on_failure(page):
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in page
    assert "&lt;b&gt;k&lt;/b&gt; = &lt;i&gt;v&lt;/i&gt;" in page
    assert "job survives &lt;here&gt;" in page and "swap_kill=off &lt;keeps&gt; the job" in page
    assert "&lt;oops&gt;" in page and "&lt;details&gt;" in page and "&lt;all&gt;" in page
    assert "&lt;TASK&gt;" in page
    found = re.findall(r'<details class="run" id="run-\d+"( open)?><summary>'
                       r'<span class="badge o-(\w+)"', page)
    opened = {o: bool(op) for op, o in found}
    assert opened == {"PASS": False, "XFAIL": False, "SKIP": False, "FAIL": True, "CRASH": True,
                      "ERROR": True}


def test_check_values_bounds_and_run_facts(page):
    assert "boot_s = 4.12" in page and "ok = yes" in page
    assert "ratio = 1.0042" in page  # measured values keep their precision
    assert "samples = [n=20: min 0, med 9.5, max 19]" in page
    assert "<code>p99 &lt;= 5 ms</code>" in page
    assert "delay to wake-up" in page  # doc
    assert "dmesg: Out of memory" in page  # diagnostics
    assert "kernel crashed: panic: Kernel panic" in page
    assert "mem_notify_release+0x9a/0xa0" in page
    assert "python -m harness run herd" in page and "/runs/1/herd/patched" in page
    assert "rounds = 12" in page and "<h3>latency</h3>" in page  # other metrics, compactly


def test_plot_semantics(page):
    assert page.count("never happened") >= 3  # bar None, CDF empty series, grouped None
    assert "linear x axis: values ≤ 0 present" in page  # log asked, negatives: linear
    assert "log scale" in page  # the positive CDF goes log (auto)
    assert "no samples" in page  # empty series in timeline / dots
    assert "2 never" in page and "1 never" in page  # dots: None samples counted
    assert "first swap write" in page and "mem_notify" in page
    assert "five runs each" in page  # note


@pytest.mark.parametrize("spec", [
    {"type": "bar", "values": []},
    {"type": "bar", "values": [["a", None]]},
    {"type": "bar", "values": {"neg": -3, "pos": 4}},
    {"type": "cdf", "series": {}},
    {"type": "cdf", "series": {"a": []}},
    {"type": "cdf", "series": {"a": [5, 5, 5]}, "log": True},
    {"type": "timeline", "series": {}},
    {"type": "timeline", "series": {"a": [[1, None]]}, "events": [[0, "e"]]},
    {"type": "grouped", "groups": {}},
    {"type": "grouped", "groups": {"g": {}}},
    {"type": "dots", "series": {}},
    {"type": "dots", "series": {"a": [-1, 2, 3]}, "log": True},
])
def test_plot_edge_cases_draw(spec):
    fig = report.plot_figure("t <x>", spec)
    assert "plot not drawn" not in fig and "<svg" in fig and "t &lt;x&gt;" in fig
    balanced(fig)


def test_bad_spec_is_a_note_not_a_broken_page():
    fig = report.plot_figure("t", {"type": "pie"})
    assert "plot not drawn" in fig and "pie" in fig
    fig = report.plot_figure("t", {"type": "bar", "values": [["only a label"]]})
    assert "plot not drawn" in fig


def test_scale_ticks_and_numbers():
    s = report.Scale(0, 97, 0, 100)
    ticks = [v for v, _ in s.ticks()]
    assert ticks[0] == 0 and s.lo <= 0 and s.hi >= 97 and len(ticks) >= 4
    s = report.Scale(-0.8, 1095, 0, 100)  # no mostly empty tick interval at the low end
    assert s.lo > -50 and s(0) > 0
    s = report.Scale(0.4, 700, 0, 100, log=True)
    assert [t for _, t in s.ticks()] == ["0.1", "1", "10", "100", "1k"]
    assert s(1) < s(10) < s(100)
    assert [t for _, t in report.Scale(0, 60000, 0, 1).ticks()][:3] == ["0", "10k", "20k"]
    assert report.fmt_num(0.61) == "0.61" and report.fmt_num(1095.2) == "1095"
    assert report.fmt_num(12.3456) == "12.3" and report.fmt_num(None) == "none"
    assert report.fmt_exact(1.0042) == "1.0042" and report.fmt_exact(12.431) == "12.431"


def test_bench_page(tmp_path):
    bench = {"title": "kexp bench <1>", "started": "20260314-120000", "kernels": KERNELS,
             "notes": "TCG inflates times <ratios count>",
             "tables": [{"title": "idle hook cost", "columns": ["kernel", "reps", "median s", "ratio"],
                         "rows": [["patched", 10, 12.431, 1.0042], ["baseline", 10, 12.379, None]],
                         "note": "ratio <1.01 is noise"}],
             "plots": {k: PLOTS[k] for k in ("p99 delay", "delay CDF", "pages per policy")}}
    p = tmp_path / "bench.html"
    report.write_bench_html(bench, p)
    text = p.read_text()
    b = balanced(text)
    assert b.svgs == 3
    assert "kexp bench &lt;1&gt;" in text and "TCG inflates times &lt;ratios count&gt;" in text
    assert "ratio &lt;1.01 is noise" in text
    assert ">12.431<" in text and ">1.0042<" in text
    assert '{"release"' not in text and ">a9b8c7d6e5f4<" in text
    assert "never happened" in text


def test_empty_run(tmp_path):
    rec = RunRecord("s", {}, [], "cmd")
    report.write_html(rec, tmp_path / "r.html")
    text = (tmp_path / "r.html").read_text()
    balanced(text)
    assert "exit code 0" in text and "no kernel record" in text
