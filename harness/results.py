"""Outcomes, results.json, JUnit XML and a readable report.

Outcome per scenario run:
  PASS  -- every check ran in the guest and measured the expected outcome
  FAIL  -- a guest check measured the wrong outcome, or an unexpected splat
  SKIP  -- every check was skipped (e.g. a tool missing in the guest)
  ERROR -- infrastructure: build, boot, lost guest, timeout, no KTAP verdict

Exit code of a run: 0 all PASS/SKIP, 1 any FAIL, 2 any ERROR (ERROR wins).
"""

from __future__ import annotations

import html
import json
import platform
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path

ORDER = {"PASS": 0, "SKIP": 0, "FAIL": 1, "ERROR": 2}


@dataclass
class Check:
    name: str
    status: str  # PASS FAIL SKIP ERROR
    detail: str = ""
    diagnostics: list[str] = field(default_factory=list)


@dataclass
class ScenarioResult:
    scenario: str
    kernel: str  # patched | baseline
    outcome: str
    checks: list[Check] = field(default_factory=list)
    splats: list[dict] = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0
    boot_seconds: float = 0.0
    accel: str = ""
    rundir: str = ""
    reproducer: str = ""
    metrics: dict = field(default_factory=dict)
    feature_missing: bool = False

    def check(self, name: str) -> Check | None:
        for c in self.checks:
            if c.name == name:
                return c
        return None


def decide(checks: list[Check], splats: list, error: str = "") -> str:
    if error:
        return "ERROR"
    if any(c.status == "ERROR" for c in checks):
        return "ERROR"
    if any(c.status == "FAIL" for c in checks) or splats:
        return "FAIL"
    if checks and all(c.status == "SKIP" for c in checks):
        return "SKIP"
    if not checks:
        return "ERROR"
    return "PASS"


def exit_code(results: list[ScenarioResult]) -> int:
    return max((ORDER[r.outcome] for r in results), default=0)


@dataclass
class RunRecord:
    started: str
    kernel: dict
    results: list[ScenarioResult]
    command: str
    host: dict = field(default_factory=lambda: {"machine": platform.node(),
                                                "python": platform.python_version()})

    def to_dict(self) -> dict:
        d = asdict(self)
        d["exit_code"] = exit_code(self.results)
        d["summary"] = summary(self.results)
        return d


def summary(results: list[ScenarioResult]) -> dict:
    s = {"PASS": 0, "FAIL": 0, "SKIP": 0, "ERROR": 0}
    for r in results:
        s[r.outcome] += 1
    return s


def write_json(rec: RunRecord, path: Path) -> None:
    path.write_text(json.dumps(rec.to_dict(), indent=1, default=str))


def write_junit(rec: RunRecord, path: Path) -> None:
    suites = ET.Element("testsuites", name="kexp")
    for r in rec.results:
        ts = ET.SubElement(suites, "testsuite", name=f"{r.scenario}[{r.kernel}]",
                           tests=str(max(1, len(r.checks))), time=f"{r.seconds:.1f}")
        if r.error:
            tc = ET.SubElement(ts, "testcase", classname=r.scenario, name="run")
            ET.SubElement(tc, "error", message=r.error.splitlines()[0][:200]).text = r.error
        for c in r.checks:
            tc = ET.SubElement(ts, "testcase", classname=f"{r.scenario}.{r.kernel}", name=c.name)
            if c.status == "FAIL":
                ET.SubElement(tc, "failure", message=c.detail[:200]).text = "\n".join(c.diagnostics)
            elif c.status == "ERROR":
                ET.SubElement(tc, "error", message=c.detail[:200])
            elif c.status == "SKIP":
                ET.SubElement(tc, "skipped", message=c.detail[:200])
        for s in r.splats:
            tc = ET.SubElement(ts, "testcase", classname=f"{r.scenario}.{r.kernel}",
                               name=f"splat:{s['kind']}")
            ET.SubElement(tc, "failure", message=s["line"][:200]).text = s["context"]
    ET.ElementTree(suites).write(path, encoding="unicode", xml_declaration=True)


def table(results: list[ScenarioResult]) -> str:
    rows = [("scenario", "kernel", "outcome", "checks", "time", "note")]
    for r in results:
        c = {"PASS": 0, "FAIL": 0, "SKIP": 0, "ERROR": 0}
        for k in r.checks:
            c[k.status] += 1
        note = ""
        if r.error:
            note = r.error.splitlines()[0][:60]
        elif r.feature_missing:
            note = "feature missing"
        elif r.splats:
            note = f"{len(r.splats)} splat(s): " + ",".join(sorted({s['kind'] for s in r.splats}))
        else:
            bad = [k.name for k in r.checks if k.status == "FAIL"]
            note = ("failed: " + ",".join(bad))[:60] if bad else ""
        rows.append((r.scenario, r.kernel, r.outcome,
                     f"{c['PASS']}/{len(r.checks)} ok" + (f", {c['SKIP']} skip" if c["SKIP"] else ""),
                     f"{r.seconds:.0f}s", note))
    w = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(str(v).ljust(w[i]) for i, v in enumerate(row)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * x for x in w))
    s = summary(results)
    absent = sum(1 for r in results if r.feature_missing and r.kernel == "baseline")
    line = f"scenario runs: PASS {s['PASS']}, FAIL {s['FAIL'] - absent}, SKIP {s['SKIP']}, ERROR {s['ERROR']}"
    if absent:
        line += f"; feature missing on the baseline kernel, as expected: {absent}"
    lines.append(line)
    return "\n".join(lines)


def _bar_svg(values: list[tuple[str, float]], unit: str, width: int = 480) -> str:
    if not values:
        return ""
    vmax = max(v for _, v in values) or 1.0
    h = 22 * len(values) + 10
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width + 260}" height="{h}">']
    for i, (label, v) in enumerate(values):
        y = 5 + 22 * i
        bw = max(1, int(width * v / vmax))
        parts.append(f'<text x="0" y="{y + 14}" font-size="12">{html.escape(label)}</text>')
        parts.append(f'<rect x="160" y="{y}" width="{bw}" height="16" fill="#4a7ab5"/>')
        parts.append(f'<text x="{165 + bw}" y="{y + 13}" font-size="11">{v:.3g} {unit}</text>')
    parts.append("</svg>")
    return "".join(parts)


def write_html(rec: RunRecord, path: Path) -> None:
    colour = {"PASS": "#2e7d32", "FAIL": "#c62828", "SKIP": "#777", "ERROR": "#e65100"}
    out = ["<!doctype html><meta charset=utf-8><title>kexp run</title>",
           "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 8px;text-align:left}"
           "pre{background:#f4f4f4;padding:6px;overflow:auto}</style>",
           f"<h1>kexp run {html.escape(rec.started)}</h1>",
           f"<p>kernel: {html.escape(json.dumps(rec.kernel))}</p>",
           f"<p>command: <code>{html.escape(rec.command)}</code></p><table>",
           "<tr><th>scenario</th><th>kernel</th><th>outcome</th><th>time</th><th>checks</th></tr>"]
    for r in rec.results:
        checks = "<br>".join(
            f'<span style="color:{colour[c.status]}">{c.status}</span> {html.escape(c.name)}'
            + (f" <small>{html.escape(c.detail)}</small>" if c.detail else "") for c in r.checks)
        out.append(f"<tr><td>{r.scenario}</td><td>{r.kernel}</td>"
                   f'<td style="color:{colour[r.outcome]}"><b>{r.outcome}</b></td>'
                   f"<td>{r.seconds:.0f}s</td><td>{checks}"
                   + (f"<pre>{html.escape(r.error)}</pre>" if r.error else "")
                   + "".join(f"<pre>{html.escape(s['context'])}</pre>" for s in r.splats)
                   + "</td></tr>")
    out.append("</table>")
    for r in rec.results:
        plots = r.metrics.get("plots", {})
        for title, spec in plots.items():
            out.append(f"<h3>{html.escape(r.scenario)} [{r.kernel}]: {html.escape(title)}</h3>")
            out.append(_bar_svg([(k, float(v)) for k, v in spec["values"]], spec.get("unit", "")))
    path.write_text("\n".join(out))


def stamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")
