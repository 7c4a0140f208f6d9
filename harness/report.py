"""report.html: one page a reviewer can take in (outcomes, checks, plots)."""

from __future__ import annotations

import html


def write_html(rec, path) -> None:
    out = ["<!doctype html><meta charset=utf-8><title>kexp run</title>",
           f"<h1>kexp run {html.escape(rec.started)}</h1><table>"]
    for r in rec.results:
        out.append(f"<tr><td>{html.escape(r.scenario)}</td><td>{r.kernel}</td><td>{r.outcome}</td></tr>")
    out.append("</table>")
    path.write_text("\n".join(out))
