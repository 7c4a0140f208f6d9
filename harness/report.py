"""report.html: one page a reviewer can take in (outcomes, checks, plots).

Self-contained HTML: inline CSS and inline SVG generated here (no JS, no
external assets), readable offline and printed (closed <details> print open).

Pages:
  write_html(rec, path)          a run (harness.results.RunRecord)
  write_bench_html(bench, path)  a benchmark: {"title", "started", "kernels" (as
                                 RunRecord.kernel; "kernel" accepted too),
                                 "tables": [{"title", "columns", "rows", "note"}],
                                 "plots": {title: spec}, optional "notes" (str or
                                 list of str), "command", "host"}

Plot specs (ScenarioResult.metrics["plots"] = {title: spec}, bench["plots"]).
Every spec may carry "note" (text under the plot); numbers may be int or float,
None (or anything not a finite number) means "never happened".
  bar       {"type": "bar" (the default), "unit": "ms",
             "values": [[label, number|None], ...] (or {label: number|None}),
             "none_label": "never happened", "xlabel": ""}
            horizontal bars from 0 (negative values go left); None: a marker + none_label
  cdf       {"type": "cdf", "unit": "ms", "series": {name: [number, ...]},
             "log": true|false (absent: log when all > 0 and max/min >= 100),
             "total": {name: int} (optional: runs per series; the curve then tops
             out at len(samples)/total), "none_label", "xlabel": "value", "ylabel"}
            empirical CDF per series (step lines, legend with n or heard/total);
            log falls back to linear (with a note) if a value <= 0; an empty
            series is listed in the legend as none_label
  timeline  {"type": "timeline", "unit": "MB", "x_unit": "s",
             "series": {name: [[x, y|None], ...]} (None breaks the line),
             "events": [[x, label], ...], "zero": true (y from 0), "xlabel": "time", "ylabel"}
  grouped   {"type": "grouped", "unit": "pages",
             "groups": {group: {series: number|None}}, "none_label", "xlabel"}
            horizontal bars, one block per group, one colour per series
  dots      {"type": "dots", "unit": "pages", "series": {name: [number|None, ...]},
             "log": false, "zero": true, "xlabel"}
            one row per name, a dot per sample, a tick at the median,
            "min · med · max" text (and "k never" for None samples)
"""

from __future__ import annotations

import html
import math
import os
import statistics
import urllib.parse
from pathlib import Path

from . import results

# Okabe-Ito, colour-blind safe; yellow left out (too light on white)
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#000000", "#D55E00", "#56B4E9")
DASHES = ("", "8 3", "2 3", "10 3 2 3", "5 2", "1 3", "12 4")
# outcome -> (text colour, background); the word is always printed, colour only helps
OUTCOME_COLORS = {
    "PASS": ("#116329", "#d8f5de"),
    "XFAIL": ("#3f5f4c", "#e2eae5"),  # green-grey: feature absent, as expected
    "SKIP": ("#57606a", "#eaeef2"),
    "FAIL": ("#b3261e", "#fde7e5"),
    "CRASH": ("#ffffff", "#b3261e"),
    "ERROR": ("#8a4300", "#ffe8cc"),
}
EXIT_TEXT = {0: "every scenario run passed (PASS, XFAIL or SKIP)",
             1: "failure: a scenario run FAILed or the kernel under test CRASHed",
             2: "infrastructure ERROR (build, QEMU, host tools or the harness)"}
OPEN_OUTCOMES = frozenset({"FAIL", "CRASH", "ERROR"})
PLOT_W = 760  # every plot stays under 800 px
FONT = 12
CHAR_W = 7.0  # average glyph width at 12 px (DejaVu Sans is wide)


def _e(x) -> str:
    return html.escape(x if isinstance(x, str) else str(x), quote=True)


# ---------------------------------------------------------------- numbers


def fmt_num(v) -> str:
    """Compact number: 3 significant digits below 100, no exponent below 1e6."""
    if v is None:
        return "none"
    if isinstance(v, bool) or not isinstance(v, int | float):
        return str(v)
    if isinstance(v, int):
        return str(v)
    if math.isnan(v) or math.isinf(v):
        return str(v)
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e6 or a < 1e-3:
        return f"{v:.3g}"
    if a >= 1000:
        return f"{v:.0f}"
    if a >= 100:
        s = f"{v:.1f}"
    else:
        s = f"{v:.3g}"
    return s.rstrip("0").rstrip(".") if "." in s else s


def fmt_exact(v) -> str:
    """A number as measured, to 6 significant digits (tables and check values)."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return fmt_num(v)
    if isinstance(v, int) or not math.isfinite(v):
        return str(v)
    if v == 0 or 1e-4 <= abs(v) < 1e6:
        return f"{v:.6g}"
    return f"{v:.0f}" if abs(v) >= 1e6 else f"{v:.3g}"


def fmt_value(v, depth: int = 0) -> str:
    """A measured value, compactly: long numeric lists summarised."""
    if isinstance(v, dict):
        if depth > 1:
            return "{…}"
        return "{" + ", ".join(f"{k}: {fmt_value(x, depth + 1)}" for k, x in v.items()) + "}"
    if isinstance(v, list | tuple):
        nums = [x for x in v if isinstance(x, int | float) and not isinstance(x, bool)]
        if len(v) > 6 and len(nums) == len(v):
            return (f"[n={len(v)}: min {fmt_num(min(nums))}, med {fmt_num(statistics.median(nums))}, "
                    f"max {fmt_num(max(nums))}]")
        if len(v) > 8:
            return "[" + ", ".join(fmt_value(x, depth + 1) for x in v[:6]) + f", … ({len(v)} items)]"
        return "[" + ", ".join(fmt_value(x, depth + 1) for x in v) + "]"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float | int):
        return fmt_exact(v)
    if v is None:
        return "none"
    s = str(v)
    return s if len(s) <= 200 else s[:200] + "…"


def _is_num(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _nice_step(span: float, n: int) -> float:
    raw = span / max(1, n)
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * mag >= raw * 0.999:
            return m * mag
    return 10 * mag


def _decimals(step: float) -> int:
    for d in range(0, 7):
        if abs(round(step * 10**d) - step * 10**d) < 1e-6:
            return d
    return 6


def _tick_label(v: float, step: float) -> str:
    if abs(v) < step * 1e-9:
        return "0"
    if abs(v) >= 1e6 and step >= 1e5:
        return f"{v / 1e6:.{_decimals(step / 1e6)}f}M"
    if abs(v) >= 1e4 and step >= 1e3:
        return f"{v / 1e3:.{_decimals(step / 1e3)}f}k"
    return f"{v:.{_decimals(step)}f}"


def _log_label(v: float) -> str:
    if v >= 1e6:
        return fmt_num(v / 1e6) + "M"
    if v >= 1e3:
        return fmt_num(v / 1e3) + "k"
    return f"{v:g}"


class Scale:
    """Data -> pixel along one axis, with tick positions and labels."""

    def __init__(self, lo: float, hi: float, p0: float, p1: float, log: bool = False,
                 zero: bool = False, nticks: int = 6):
        self.p0, self.p1, self.log = p0, p1, log
        if log:
            self.lo = 10 ** math.floor(math.log10(lo))
            self.hi = 10 ** math.ceil(math.log10(hi))
            if self.hi <= self.lo:
                self.hi = self.lo * 10
            self.step = 0.0
            return
        if zero:
            lo, hi = min(lo, 0.0), max(hi, 0.0)
        if hi <= lo:
            pad = abs(lo) * 0.1 or 1.0
            lo, hi = lo - pad, hi + pad
        self.step = _nice_step(hi - lo, nticks)
        self.lo = math.floor(lo / self.step + 1e-9) * self.step
        self.hi = math.ceil(hi / self.step - 1e-9) * self.step
        # a tick interval mostly empty at an end: end the axis near the data instead
        pad = (hi - lo) * 0.03
        if lo - self.lo > 0.5 * self.step:
            self.lo = lo - pad
        if self.hi - hi > 0.5 * self.step:
            self.hi = hi + pad

    def __call__(self, v: float) -> float:
        if self.log:
            v = max(v, self.lo)
            f = (math.log10(v) - math.log10(self.lo)) / (math.log10(self.hi) - math.log10(self.lo))
        else:
            f = (v - self.lo) / (self.hi - self.lo)
        return self.p0 + f * (self.p1 - self.p0)

    def ticks(self) -> list[tuple[float, str]]:
        if self.log:
            k0, k1 = round(math.log10(self.lo)), round(math.log10(self.hi))
            mults = (1, 2, 5) if k1 - k0 <= 2 else (1,)
            out = []
            for k in range(k0, k1 + 1):
                for m in mults:
                    v = m * 10.0**k
                    if self.lo * 0.999 <= v <= self.hi * 1.001:
                        out.append((v, _log_label(v)))
            return out
        k0 = math.ceil(self.lo / self.step - 1e-9)
        k1 = math.floor(self.hi / self.step + 1e-9)
        return [(k * self.step, _tick_label(k * self.step, self.step)) for k in range(k0, k1 + 1)]


# ---------------------------------------------------------------- SVG pieces


def _text(x, y, s, anchor="start", cls="", extra="") -> str:
    c = f' class="{cls}"' if cls else ""
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{c}{extra}>{_e(s)}</text>')


def _clip(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def _label(x, y, s, n, anchor="end") -> str:
    """A text label cut to n characters; the full text as a tooltip."""
    s = str(s)
    if len(s) <= n:
        return _text(x, y, s, anchor)
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"><title>{_e(s)}</title>'
            f"{_e(_clip(s, n))}</text>")


def _svg(w: float, h: float, title: str, body: list[str]) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" width="{w:.0f}" height="{h:.0f}" '
            f'viewBox="0 0 {w:.0f} {h:.0f}" role="img" aria-label="{_e(title)}">'
            f"<title>{_e(title)}</title>" + "".join(body) + "</svg>")


def _xaxis(sx: Scale, y: float, top: float, label: str) -> list[str]:
    out = [f'<line class="axis" x1="{sx.p0:.1f}" y1="{y:.1f}" x2="{sx.p1:.1f}" y2="{y:.1f}"/>']
    for v, t in sx.ticks():
        x = sx(v)
        out.append(f'<line class="grid" x1="{x:.1f}" y1="{top:.1f}" x2="{x:.1f}" y2="{y:.1f}"/>')
        out.append(f'<line class="axis" x1="{x:.1f}" y1="{y:.1f}" x2="{x:.1f}" y2="{y + 4:.1f}"/>')
        out.append(_text(x, y + 16, t, "middle", "tick"))
    if label:
        out.append(_text((sx.p0 + sx.p1) / 2, y + 33, label, "middle", "axlabel"))
    return out


def _yaxis(sy: Scale, x: float, right: float, label: str, fmt=None) -> list[str]:
    out = [f'<line class="axis" x1="{x:.1f}" y1="{sy.p0:.1f}" x2="{x:.1f}" y2="{sy.p1:.1f}"/>']
    for v, t in sy.ticks():
        y = sy(v)
        out.append(f'<line class="grid" x1="{x:.1f}" y1="{y:.1f}" x2="{right:.1f}" y2="{y:.1f}"/>')
        out.append(f'<line class="axis" x1="{x - 4:.1f}" y1="{y:.1f}" x2="{x:.1f}" y2="{y:.1f}"/>')
        out.append(_text(x - 7, y + 4, fmt(v) if fmt else t, "end", "tick"))
    if label:
        cy = (sy.p0 + sy.p1) / 2
        out.append(f'<text x="14" y="{cy:.1f}" text-anchor="middle" class="axlabel" '
                   f'transform="rotate(-90 14 {cy:.1f})">{_e(label)}</text>')
    return out


def _zero_line(sx: Scale, top: float, bottom: float) -> str:
    if not sx.log and sx.lo < 0 < sx.hi:
        x = sx(0)
        return f'<line class="zero" x1="{x:.1f}" y1="{top:.1f}" x2="{x:.1f}" y2="{bottom:.1f}"/>'
    return ""


def _unit_label(name: str, unit: str) -> str:
    return f"{name} ({unit})" if unit and name else (name or unit or "")


def _legend(x: float, y: float, width: float, items: list[tuple[int, str, str]],
            kind: str = "line", empty: frozenset | set = frozenset()) -> tuple[list[str], float]:
    """items: (palette index, name, suffix) as line samples (with dashes) or swatches,
    in as many columns as fit in width; indices in empty get the "never" marker.
    Returns the SVG pieces and the height used."""
    if not items:
        return [], 0.0
    colw = min(width, max(len(_clip(n, 28)) + len(s) + 1 for _, n, s in items) * CHAR_W + 44)
    ncol = max(1, int(width // colw))
    out = []
    for j, (i, name, suffix) in enumerate(items):
        xx, yy = x + (j % ncol) * colw, y + (j // ncol) * 18 + 12
        col, dash = PALETTE[i % len(PALETTE)], DASHES[i % len(DASHES)]
        if i in empty:  # nothing drawn for it: the "never" marker, not a line sample
            out.append(f'<path class="never" d="M{xx + 14:.1f} {yy - 10:.1f} l6 6 -6 6 -6 -6z"/>')
        elif kind == "line":
            d = f' stroke-dasharray="{dash}"' if dash else ""
            out.append(f'<line x1="{xx:.1f}" y1="{yy - 4:.1f}" x2="{xx + 28:.1f}" y2="{yy - 4:.1f}" '
                       f'stroke="{col}" stroke-width="2.5"{d}/>')
        else:
            out.append(f'<rect x="{xx + 8:.1f}" y="{yy - 10:.1f}" width="12" height="12" fill="{col}"/>')
        s = _clip(str(name), 28)
        t = f"<title>{_e(name)}</title>" if s != str(name) else ""
        out.append(f'<text x="{xx + 34:.1f}" y="{yy:.1f}">{t}{_e(s)}'
                   + (f'<tspan class="muted"> {_e(suffix)}</tspan>' if suffix else "") + "</text>")
    return out, 18.0 * math.ceil(len(items) / ncol) + 6


def _left_margin(labels, lo: int = 60, hi: int = 230) -> float:
    n = max((len(str(s)) for s in labels), default=4)
    return float(min(hi, max(lo, n * CHAR_W + 16)))


def _pairs(values) -> list[tuple[str, float | None]]:
    if isinstance(values, dict):
        values = list(values.items())
    out = []
    for item in values or []:
        label, v = item[0], item[1]
        out.append((str(label), v if _is_num(v) else None))
    return out


# ---------------------------------------------------------------- plots


def bar_svg(spec: dict, title: str = "") -> str:
    unit = spec.get("unit", "")
    vals = _pairs(spec.get("values", []))
    none_label = spec.get("none_label", "never happened")
    if not vals:
        return _empty_svg(title, "no values")
    left = _left_margin([lab for lab, _ in vals], hi=260)
    right = 110.0
    row, top = 24.0, 8.0
    h = top + row * len(vals) + 44
    nums = [v for _, v in vals if v is not None] or [0.0, 1.0]
    sx = Scale(min(nums), max(nums), left, PLOT_W - right, zero=True)
    bottom = top + row * len(vals)
    body = _xaxis(sx, bottom, top, _unit_label(spec.get("xlabel", ""), unit))
    x0 = sx(0.0)
    nlab = int((left - 12) / CHAR_W)
    for i, (lab, v) in enumerate(vals):
        y = top + i * row
        cy = y + row / 2
        body.append(_label(left - 8, cy + 4, lab, nlab))
        if v is None:
            body.append(f'<path class="never" d="M{x0 + 6:.1f} {cy - 6:.1f} l6 6 -6 6 -6 -6z"/>')
            body.append(_text(x0 + 16, cy + 4, none_label, cls="never-t"))
            continue
        xv = sx(v)
        xa, xb = sorted((x0, xv))
        body.append(f'<rect x="{xa:.1f}" y="{y + 5:.1f}" width="{max(1.0, xb - xa):.1f}" '
                    f'height="{row - 10:.1f}" fill="{PALETTE[0]}"><title>{_e(lab)}: '
                    f"{_e(fmt_num(v))} {_e(unit)}</title></rect>")
        tx, anchor = (xb + 5, "start") if v >= 0 else (xa - 5, "end")
        body.append(_text(tx, cy + 4, f"{fmt_num(v)} {unit}".strip(), anchor, "val"))
    body.append(f'<line class="axis" x1="{x0:.1f}" y1="{top:.1f}" x2="{x0:.1f}" y2="{bottom:.1f}"/>')
    return _svg(PLOT_W, h, title, body)


def _empty_svg(title: str, msg: str) -> str:
    return _svg(PLOT_W, 40, title, [_text(10, 24, f"{title}: {msg}", cls="muted")])


def _series(spec: dict) -> dict[str, list]:
    s = spec.get("series") or {}
    return {str(k): list(v or []) for k, v in s.items()}


def cdf_svg(spec: dict, title: str = "") -> str:
    unit = spec.get("unit", "")
    series = {k: sorted(x for x in v if _is_num(x)) for k, v in _series(spec).items()}
    total = spec.get("total") or {}
    allv = [x for v in series.values() for x in v]
    log = spec.get("log")
    note = ""
    if log is None:
        log = bool(allv) and min(allv) > 0 and max(allv) / min(allv) >= 100
    elif log and allv and min(allv) <= 0:
        log, note = False, "linear x axis: values ≤ 0 present"
    none_label = spec.get("none_label", "never happened")
    items = []
    for i, (name, v) in enumerate(series.items()):
        n = total.get(name)
        if not v:
            suffix = none_label + (f" (0/{n})" if n else " (no samples)")
        elif n:
            suffix = f"{len(v)}/{n}"
        else:
            suffix = f"n={len(v)}"
        items.append((i, name, suffix))
    left, top = 62.0, 10.0 + (16 if note else 0)
    ph = 220.0
    right = PLOT_W - 20
    leg, lh = _legend(left, top + ph + 42, right - left, items,
                      empty={i for i, v in enumerate(series.values()) if not v})
    h = top + ph + 46 + lh
    if not allv:
        allv = [0.0, 1.0]
    sx = Scale(min(allv), max(allv), left, right, log=bool(log))
    sy = Scale(0.0, 1.0, top + ph, top, nticks=4)
    body = _yaxis(sy, left, right, spec.get("ylabel", "fraction ≤ x"), fmt=lambda v: f"{v:.2f}".rstrip("0")
                  .rstrip(".") if v not in (0, 1) else str(int(v)))
    body += _xaxis(sx, top + ph, top, _unit_label(spec.get("xlabel", "value"), unit)
                   + (" — log scale" if log else ""))
    body.append(_zero_line(sx, top, top + ph))
    if note:
        body.append(_text(left, 12, note, cls="muted"))
    for i, (name, v) in enumerate(series.items()):
        if not v:
            continue
        n = total.get(name) or len(v)
        col, dash = PALETTE[i % len(PALETTE)], DASHES[i % len(DASHES)]
        pts = [f"M{sx(v[0]):.1f} {sy(0):.1f}"]
        for k, x in enumerate(v):
            px = sx(x)
            pts.append(f"H{px:.1f}V{sy(min(1.0, (k + 1) / n)):.1f}")
        pts.append(f"H{right:.1f}")
        d = f' stroke-dasharray="{dash}"' if dash else ""
        body.append(f'<path d="{"".join(pts)}" fill="none" stroke="{col}" stroke-width="2"{d}>'
                    f"<title>{_e(name)}: {len(v)} samples, median {_e(fmt_num(statistics.median(v)))} "
                    f"{_e(unit)}</title></path>")
    body += leg
    return _svg(PLOT_W, h, title, body)


def timeline_svg(spec: dict, title: str = "") -> str:
    unit, xunit = spec.get("unit", ""), spec.get("x_unit", "")
    series = {}
    for k, pts in _series(spec).items():
        series[k] = [(p[0], p[1] if _is_num(p[1]) else None) for p in pts if len(p) >= 2 and _is_num(p[0])]
    events = [(e[0], str(e[1]) if len(e) > 1 else "") for e in spec.get("events") or [] if _is_num(e[0])]
    xs = [x for v in series.values() for x, _ in v] + [x for x, _ in events]
    ys = [y for v in series.values() for _, y in v if y is not None]
    if not xs:
        return _empty_svg(title, "no samples")
    items = [(i, k, "" if v else "no samples") for i, (k, v) in enumerate(series.items())]
    left = 66.0
    right = PLOT_W - 20
    sx = Scale(min(xs), max(xs), left, right)
    # event labels above the plot like flags, one row each unless a label fits in a
    # higher row without touching another label or crossing another event's line
    rows_end: list[float] = []
    placed = []
    for x, lab in sorted(events):
        s = _clip(lab, 30)
        px, wd = sx(x), len(s) * 6.3 + 8
        anchor_end = px + wd > PLOT_W - 2
        x0 = px - wd if anchor_end else px
        r = next((j for j in range(len(rows_end))
                  if rows_end[j] < x0 and all(rows_end[k] < px - 2 for k in range(j + 1, len(rows_end)))),
                 None)
        if r is None:
            if len(rows_end) < 10:
                rows_end.append(-1.0)
            r = len(rows_end) - 1
        rows_end[r] = max(rows_end[r], x0 + wd)
        placed.append((x, px, anchor_end, r, s, lab))
    top = 12.0 + 14 * len(rows_end)
    ph = 210.0
    empty = {i for i, v in enumerate(series.values()) if all(y is None for _, y in v)}
    leg, lh = _legend(left, top + ph + 42, right - left, items, empty=empty)
    h = top + ph + 46 + lh
    sy = Scale(min(ys or [0.0]), max(ys or [1.0]), top + ph, top, zero=spec.get("zero", True), nticks=5)
    body = _yaxis(sy, left, right, _unit_label(spec.get("ylabel", ""), unit))
    body += _xaxis(sx, top + ph, top, _unit_label(spec.get("xlabel", "time"), xunit))
    for x, px, anchor_end, r, s, lab in placed:
        ty = 14 + 14 * r
        body.append(f'<line class="event" x1="{px:.1f}" y1="{ty - 9:.1f}" x2="{px:.1f}" '
                    f'y2="{top + ph:.1f}"/>')
        t = f"<title>{_e(lab)} at {_e(fmt_num(x))} {_e(xunit)}</title>"
        tx, anchor = (px - 3, "end") if anchor_end else (px + 3, "start")
        body.append(f'<text x="{tx:.1f}" y="{ty:.1f}" text-anchor="{anchor}" class="event-t">'
                    f"{t}{_e(s)}</text>")
    for i, (name, pts) in enumerate(series.items()):
        col, dash = PALETTE[i % len(PALETTE)], DASHES[i % len(DASHES)]
        d, pen = [], False
        for x, y in sorted(pts, key=lambda p: p[0]):
            if y is None:
                pen = False
                continue
            d.append(f"{'L' if pen else 'M'}{sx(x):.1f} {sy(y):.1f}")
            pen = True
        if not d:
            continue
        da = f' stroke-dasharray="{dash}"' if dash else ""
        body.append(f'<path d="{"".join(d)}" fill="none" stroke="{col}" stroke-width="2"{da}>'
                    f"<title>{_e(name)}</title></path>")
        if len(pts) <= 40:
            for x, y in pts:
                if y is not None:
                    body.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5" fill="{col}"/>')
    body += leg
    return _svg(PLOT_W, h, title, body)


def grouped_svg(spec: dict, title: str = "") -> str:
    unit = spec.get("unit", "")
    none_label = spec.get("none_label", "never happened")
    groups = {str(g): _pairs(v) for g, v in (spec.get("groups") or {}).items()}
    names: list[str] = []
    for v in groups.values():
        for n, _ in v:
            if n not in names:
                names.append(n)
    if not groups or not names:
        return _empty_svg(title, "no values")
    nums = [x for v in groups.values() for _, x in v if x is not None] or [0.0, 1.0]
    left = _left_margin(groups, hi=200)
    right = 100.0
    bar, gap = 15.0, 12.0
    top = 8.0 + 18 * math.ceil(len(names) / 4)
    hgroups = [len(v) * bar + gap for v in groups.values()]
    bottom = top + sum(hgroups)
    h = bottom + 44
    sx = Scale(min(nums), max(nums), left, PLOT_W - right, zero=True)
    body = _xaxis(sx, bottom, top, _unit_label(spec.get("xlabel", ""), unit))
    x0 = sx(0.0)
    # legend: up to 4 per line across the top
    for j, n in enumerate(names):
        lx, ly = left + (j % 4) * 150, 18 + 18 * (j // 4)
        i = names.index(n)
        body.append(f'<rect x="{lx:.1f}" y="{ly - 10:.1f}" width="12" height="12" '
                    f'fill="{PALETTE[i % len(PALETTE)]}"/>')
        body.append(_label(lx + 17, ly, n, 18, "start"))
    y = top + gap / 2
    nlab = int((left - 12) / CHAR_W)
    for g, vals in groups.items():
        body.append(_label(left - 8, y + len(vals) * bar / 2 + 4, g, nlab))
        for n, v in vals:
            i = names.index(n)
            cy = y + bar / 2
            if v is None:
                body.append(f'<path class="never" d="M{x0 + 5:.1f} {cy - 5:.1f} l5 5 -5 5 -5 -5z"/>')
                body.append(_text(x0 + 14, cy + 4, f"{n}: {none_label}", cls="never-t"))
            else:
                xa, xb = sorted((x0, sx(v)))
                body.append(f'<rect x="{xa:.1f}" y="{y + 1:.1f}" width="{max(1.0, xb - xa):.1f}" '
                            f'height="{bar - 2:.1f}" fill="{PALETTE[i % len(PALETTE)]}">'
                            f"<title>{_e(g)} / {_e(n)}: {_e(fmt_num(v))} {_e(unit)}</title></rect>")
                tx, anchor = (xb + 4, "start") if v >= 0 else (xa - 4, "end")
                body.append(_text(tx, cy + 4, fmt_num(v), anchor, "val"))
            y += bar
        y += gap
    body.append(f'<line class="axis" x1="{x0:.1f}" y1="{top:.1f}" x2="{x0:.1f}" y2="{bottom:.1f}"/>')
    return _svg(PLOT_W, h, title, body)


def dots_svg(spec: dict, title: str = "") -> str:
    unit = spec.get("unit", "")
    series = _series(spec)
    if not series:
        return _empty_svg(title, "no values")
    allv = [x for v in series.values() for x in v if _is_num(x)]
    log = bool(spec.get("log")) and bool(allv) and min(allv) > 0
    left = _left_margin(series, hi=200)
    texts = {}
    for name, v in series.items():
        nums = [x for x in v if _is_num(x)]
        t = (f"min {fmt_num(min(nums))} · med {fmt_num(statistics.median(nums))} · max {fmt_num(max(nums))}"
             if nums else "no samples")
        texts[name] = t + (f" · {len(v) - len(nums)} never" if len(v) > len(nums) else "")
    right = min(300.0, max(len(t) for t in texts.values()) * 6.6 + 18)
    row, top = 30.0, 8.0
    bottom = top + row * len(series)
    h = bottom + 44
    sx = Scale(min(allv or [0.0]), max(allv or [1.0]), left, PLOT_W - right, log=log,
               zero=spec.get("zero", True) and not log)
    body = _xaxis(sx, bottom, top, _unit_label(spec.get("xlabel", ""), unit)
                  + (" — log scale" if log else ""))
    body.append(_zero_line(sx, top, bottom))
    nlab = int((left - 12) / CHAR_W)
    for i, (name, v) in enumerate(series.items()):
        cy = top + i * row + row / 2
        col = PALETTE[i % len(PALETTE)]
        nums = [x for x in v if _is_num(x)]
        nnone = len(v) - len(nums)
        body.append(_label(left - 8, cy + 4, name, nlab))
        body.append(f'<line class="grid" x1="{left:.1f}" y1="{cy:.1f}" x2="{PLOT_W - right:.1f}" '
                    f'y2="{cy:.1f}"/>')
        for k, x in enumerate(nums):
            jy = ((k % 5) - 2) * 2.5
            body.append(f'<circle cx="{sx(x):.1f}" cy="{cy + jy:.1f}" r="4.5" fill="{col}" '
                        f'fill-opacity="0.65" stroke="{col}"><title>{_e(name)} #{k + 1}: '
                        f"{_e(fmt_num(x))} {_e(unit)}</title></circle>")
        if nums:
            med = statistics.median(nums)
            mx = sx(med)
            body.append(f'<line class="median" x1="{mx:.1f}" y1="{cy - 11:.1f}" x2="{mx:.1f}" '
                        f'y2="{cy + 11:.1f}"><title>median {_e(fmt_num(med))}</title></line>')
        elif nnone:
            body.append(f'<path class="never" d="M{left + 6:.1f} {cy - 6:.1f} l6 6 -6 6 -6 -6z"/>')
        body.append(_text(PLOT_W - right + 10, cy + 4, texts[name], cls="val"))
    return _svg(PLOT_W, h, title, body)


PLOTS = {"bar": bar_svg, "cdf": cdf_svg, "timeline": timeline_svg, "grouped": grouped_svg,
         "dots": dots_svg}


def plot_svg(title: str, spec: dict) -> str:
    """The inline SVG of one plot spec (see the module docstring)."""
    kind = (spec or {}).get("type", "bar")
    fn = PLOTS.get(kind)
    if fn is None:
        raise ValueError(f"unknown plot type {kind!r}")
    return fn(spec, title)


def plot_figure(title: str, spec: dict) -> str:
    """<figure> with heading, SVG and note; a bad spec shows as a note, not a broken page."""
    try:
        svg = plot_svg(title, spec if isinstance(spec, dict) else {})
    except Exception as e:  # a view must not hide the rest of the report
        svg = f'<p class="muted">plot not drawn: {_e(type(e).__name__)}: {_e(e)}</p>'
    note = spec.get("note", "") if isinstance(spec, dict) else ""
    return (f'<figure><figcaption>{_e(title)}</figcaption>{svg}'
            + (f'<p class="note">{_e(note)}</p>' if note else "") + "</figure>")


# ---------------------------------------------------------------- HTML pieces

def standalone_svg(title: str, spec: dict) -> str:
    """A plot as an SVG file of its own (its styles inline, white background),
    e.g. for the README."""
    svg = plot_svg(title, spec)
    css = "".join(ln for ln in CSS.splitlines() if ln.startswith("svg.plot"))
    head, sep, rest = svg.partition(">")
    return (f'{head}{sep}<style>{css}</style>'
            f'<rect width="100%" height="100%" fill="#fff"/>{rest}')


CSS = """
:root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg2:#f6f8fa}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,"DejaVu Sans",sans-serif;color:var(--fg);max-width:1120px;margin:0 auto;
padding:16px 24px 40px}
h1{font-size:22px;margin:4px 0 8px}h2{font-size:17px;margin:22px 0 8px;border-bottom:1px solid var(--line);
padding-bottom:3px}h3{font-size:15px;margin:14px 0 6px}
code,pre,.mono{font-family:"DejaVu Sans Mono",ui-monospace,monospace;font-size:12.5px}
pre{background:var(--bg2);border:1px solid var(--line);padding:6px 8px;margin:4px 0 8px;overflow:auto;
max-height:360px;white-space:pre-wrap;word-break:break-word}
table{border-collapse:collapse;margin:4px 0 10px}
th,td{border-bottom:1px solid var(--line);padding:3px 10px 3px 6px;text-align:left;vertical-align:top}
th{background:var(--bg2);font-weight:600;font-size:13px}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:6px 0 10px}
.meta dt{color:var(--muted)}.meta dd{margin:0}
.muted{color:var(--muted)}.small{font-size:12.5px}
.badge{display:inline-block;min-width:54px;text-align:center;font-weight:600;font-size:12.5px;
padding:1px 6px;border-radius:3px;border:1px solid transparent}
""" + "".join(
    f".o-{o}{{color:{fg};background:{bg}}}" for o, (fg, bg) in OUTCOME_COLORS.items()) + """
.o-CRASH{font-weight:800;letter-spacing:.5px}.o-ERROR{border-color:#e8871a}
tr.r-CRASH td.scn,tr.r-CRASH td.note{font-weight:700;color:#b3261e}
tr.r-ERROR td.note{color:#8a4300}tr.r-FAIL td.note{color:#b3261e}
table.outcomes td:not(.note),table.outcomes th{white-space:nowrap}
.verdict{padding:6px 10px;border-radius:4px;margin:8px 0;font-weight:600}
.v0{background:#d8f5de;color:#116329}.v1{background:#fde7e5;color:#b3261e}.v2{background:#ffe8cc;color:#8a4300}
.summary .badge{min-width:0;margin-right:4px}.summary .zero{opacity:.45}
.legend{font-size:12.5px;color:var(--muted);margin:2px 0 0}
details.run{border:1px solid var(--line);border-radius:5px;margin:8px 0;padding:0 10px}
details.run>summary{cursor:pointer;padding:6px 0;font-weight:600}
details.run[open]>summary{border-bottom:1px solid var(--line);margin-bottom:6px}
table.checks{width:100%}table.checks td.st{width:62px}table.checks td.bound{min-width:11em}
.doc{color:var(--muted);font-size:12.5px}
.vals{font-family:"DejaVu Sans Mono",ui-monospace,monospace;font-size:12px;color:#24292f}
.vals span{white-space:nowrap;margin-right:10px}
.crash{color:#b3261e;font-weight:700}
.splat{border-left:3px solid #b3261e;padding-left:8px;margin:6px 0}
figure{margin:10px 0 14px}figcaption{font-weight:600;font-size:13.5px;margin-bottom:2px}
p.note,p.tnote{font-size:12.5px;color:var(--muted);margin:2px 0 8px;max-width:760px}
svg.plot{max-width:100%;height:auto;font-family:"DejaVu Sans",system-ui,sans-serif;font-size:12px}
svg.plot text{fill:#1f2328}svg.plot .tick{fill:#444;font-size:11px}svg.plot .axlabel{fill:#333;font-size:12px}
svg.plot .muted{fill:#59636e}svg.plot .val{fill:#333;font-size:11.5px}
svg.plot .axis{stroke:#444;stroke-width:1}svg.plot .grid{stroke:#e3e6ea;stroke-width:1}
svg.plot .zero{stroke:#888;stroke-width:1;stroke-dasharray:3 3}
svg.plot .event{stroke:#666;stroke-width:1;stroke-dasharray:4 3}svg.plot .event-t{fill:#444;font-size:11px}
svg.plot .never{fill:#fff;stroke:#D55E00;stroke-width:2}svg.plot .never-t{fill:#a33f00;font-style:italic}
svg.plot .median{stroke:#000;stroke-width:2.5}
footer{margin-top:28px;color:var(--muted);font-size:12px}
@media print{body{max-width:none;padding:0;font-size:12px}pre{max-height:none;overflow:visible}
details.run{break-inside:avoid-page}details::details-content{content-visibility:visible;display:block}
figure,table{break-inside:avoid}a{color:inherit;text-decoration:none}
.badge,.verdict,th{-webkit-print-color-adjust:exact;print-color-adjust:exact}}
"""


def _page(title: str, body: list[str]) -> str:
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(title)}</title><style>{CSS}</style></head>\n<body>\n"
            + "\n".join(body)
            + '\n<footer>self-contained report (no scripts, no external assets)</footer>\n</body></html>\n')


def _badge(outcome: str) -> str:
    return f'<span class="badge o-{_e(outcome)}">{_e(outcome)}</span>'


def _short(v, n: int = 12) -> str:
    s = "" if v is None else str(v)
    if len(s) <= n:
        return f"<code>{_e(s)}</code>" if s else '<span class="muted">–</span>'
    return f'<code title="{_e(s)}">{_e(s[:n])}</code>'


def kernel_table(kernels: dict, results_: list | None = None) -> str:
    """A compact table, one row per kernel kind: never the raw dict."""
    if not kernels:
        return '<p class="muted">no kernel record (no kernel was built or found)</p>'
    accel: dict[str, set] = {}
    for r in results_ or []:
        if getattr(r, "accel", ""):
            accel.setdefault(r.kernel, set()).add(r.accel)
    rows = ['<table class="kernels"><thead><tr><th>kernel</th><th>release</th><th>base</th>'
            "<th>built commit</th><th>series</th><th>config</th><th>accelerator</th></tr></thead><tbody>"]
    for kind, k in kernels.items():
        k = k if isinstance(k, dict) else {"release": str(k)}
        acc = k.get("accel") or ", ".join(sorted(accel.get(kind, ())))
        rel = _e(k.get("release", "")) + (' <span class="muted">(debug)</span>' if k.get("debug") else "")
        rows.append(f"<tr><td><b>{_e(kind)}</b></td><td><code>{rel}</code></td>"
                    f"<td>{_short(k.get('base'))}</td><td>{_short(k.get('head'))}</td>"
                    f"<td>{_short(k.get('series_hash'))}</td><td>{_short(k.get('config_hash'))}</td>"
                    f"<td>{_e(acc) if acc else '<span class=muted>–</span>'}</td></tr>")
    rows.append("</tbody></table>")
    return "".join(rows)


def _host(host) -> str:
    if isinstance(host, dict):
        return " · ".join(f"{_e(k)} {_e(v)}" for k, v in host.items())
    return _e(host or "")


def _meta(items: list[tuple[str, str]]) -> str:
    return ('<dl class="meta">' + "".join(f"<dt>{_e(k)}</dt><dd>{v}</dd>" for k, v in items if v)
            + "</dl>")


def _values(values: dict) -> str:
    if not values:
        return ""
    return ('<div class="vals">' + "".join(
        f"<span>{_e(k)} = {_e(fmt_value(v))}</span> " for k, v in values.items()) + "</div>")


def _note(r) -> str:
    if r.error:
        return r.error.splitlines()[0][:120]
    if r.crash:
        return "crash: " + r.crash.splitlines()[0][:120]
    if r.outcome == "XFAIL" and not r.splats:
        return "feature absent, as expected"
    return results.note(r)


def _checks_count(r) -> str:
    if not r.checks:
        return '<span class="muted">–</span>'
    ok = sum(1 for c in r.checks if c.status in ("PASS", "XFAIL"))
    sk = sum(1 for c in r.checks if c.status == "SKIP")
    return f"{ok}/{len(r.checks)}" + (f" <span class=muted>({sk} skip)</span>" if sk else "")


def _time(r, boot: bool = True) -> str:
    s = f"{r.seconds:.0f} s" if r.seconds else "–"
    if boot and r.boot_seconds:
        s += f' <span class="muted">(boot {r.boot_seconds:.0f} s)</span>'
    return s


def _ordered(res: list) -> list[tuple[int, object]]:
    """Runs of one scenario side by side (patched before baseline), scenarios in first-run order."""
    first: dict[str, int] = {}
    for i, r in enumerate(res):
        first.setdefault(r.scenario, i)
    kind = {"patched": 0, "baseline": 1}
    return sorted(enumerate(res), key=lambda ir: (first[ir[1].scenario], kind.get(ir[1].kernel, 2), ir[0]))


def outcome_table(res: list) -> str:
    rows = ['<table class="outcomes"><thead><tr><th>scenario</th><th>kernel</th><th>outcome</th>'
            '<th class="num">checks ok</th><th class="num">time</th><th>note</th></tr></thead><tbody>']
    for i, r in _ordered(res):
        rows.append(f'<tr class="r-{_e(r.outcome)}">'
                    f'<td class="scn"><a href="#run-{i}">{_e(r.scenario)}</a></td>'
                    f"<td>{_e(r.kernel)}</td><td>{_badge(r.outcome)}</td>"
                    f'<td class="num">{_checks_count(r)}</td><td class="num">{_time(r, False)}</td>'
                    f'<td class="note">{_e(_note(r))}</td></tr>')
    rows.append("</tbody></table>")
    return "".join(rows)


def summary_line(res: list) -> str:
    s = results.summary(res)
    code = results.exit_code(res)
    parts = [f'<span class="{"zero" if not s[o] else ""}">{_badge(o)}{s[o]}</span>'
             for o in results.OUTCOMES]
    return (f'<p class="summary">{len(res)} scenario run{"s" if len(res) != 1 else ""}: '
            + " ".join(parts) + f" — <b>exit code {code}</b></p>")


LEGEND = ("PASS: every check met its bound · XFAIL: feature absent on the unpatched kernel, as "
          "expected (a success) · SKIP: nothing could be judged · FAIL: a check failed or an "
          "unexpected splat · CRASH: the kernel under test crashed, hung or stalled · ERROR: "
          "infrastructure (build, QEMU, host tools, harness)")


def checks_table(checks: list) -> str:
    if not checks:
        return '<p class="muted">no checks were judged</p>'
    rows = ['<table class="checks"><thead><tr><th>status</th><th>check</th><th>detail and measured values'
            "</th><th>bound</th></tr></thead><tbody>"]
    for c in checks:
        diag = ""
        if c.diagnostics:
            diag = "<pre>" + _e("\n".join(str(d) for d in c.diagnostics[:40])) + (
                f"\n… {len(c.diagnostics) - 40} more" if len(c.diagnostics) > 40 else "") + "</pre>"
        doc = f'<div class="doc">{_e(c.doc)}</div>' if c.doc else ""
        rows.append(f'<tr><td class="st">{_badge(c.status)}</td><td><b>{_e(c.name)}</b>{doc}</td>'
                    f"<td>{_e(c.detail)}{_values(c.values)}{diag}</td>"
                    f'<td class="bound">{"<code>" + _e(c.bound) + "</code>" if c.bound else ""}</td></tr>')
    rows.append("</tbody></table>")
    return "".join(rows)


def _cell(v) -> tuple[str, bool]:
    if v is None:
        return '<span class="muted">–</span>', False
    if isinstance(v, bool):
        return ("yes" if v else "no"), False
    if _is_num(v):
        return _e(fmt_exact(v)), True
    return _e(fmt_value(v)), False


def data_table(columns: list, rows: list) -> str:
    out = ["<table><thead><tr>"]
    numcol = [bool(rows) and all(_is_num(r[j]) or r[j] is None for r in rows if j < len(r))
              for j in range(len(columns))]
    for j, c in enumerate(columns):
        out.append(f'<th{" class=num" if numcol[j] else ""}>{_e(c)}</th>')
    out.append("</tr></thead><tbody>")
    for r in rows:
        out.append("<tr>")
        for j, v in enumerate(r):
            s, isnum = _cell(v)
            out.append(f'<td{" class=num" if isnum or (j < len(numcol) and numcol[j]) else ""}>{s}</td>')
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def metrics_html(metrics: dict) -> str:
    """Metrics other than plots: a dict of rows as a table, the rest as key = value."""
    out, flat = [], {}
    for k, v in metrics.items():
        if k == "plots":
            continue
        if isinstance(v, dict) and v and all(isinstance(x, dict) for x in v.values()):
            cols: list[str] = []
            for row in v.values():
                cols += [c for c in row if c not in cols]
            out.append(f"<h3>{_e(k)}</h3>" + data_table(["", *cols],
                                                         [[name, *(row.get(c) for c in cols)]
                                                          for name, row in v.items()]))
        else:
            flat[k] = v
    if flat:
        out.insert(0, _values(flat))
    return "".join(out)


def _href(p: str, base: Path | None) -> str:
    """A link to a run directory, relative to the report so a copied run tree keeps working."""
    if base is not None:
        try:
            p = os.path.relpath(p, base)
        except ValueError:
            pass
    return urllib.parse.quote(p)


def run_details(i: int, r, base: Path | None = None) -> str:
    op = " open" if r.outcome in OPEN_OUTCOMES else ""
    note = _note(r)
    out = [f'<details class="run" id="run-{i}"{op}><summary>{_badge(r.outcome)} {_e(r.scenario)} '
           f'<span class="muted">on the {_e(r.kernel)} kernel</span>'
           + (f' <span class="muted small">— {_e(note)}</span>' if note else "") + "</summary>"]
    if r.crash:
        out.append(f'<p class="crash">kernel crashed: {_e(r.crash)}</p>')
    if r.error:
        out.append(f"<h3>error</h3><pre>{_e(r.error)}</pre>")
    for s in r.splats:
        kind = s.get("kind", "?")
        out.append(f'<div class="splat"><b>{_e(kind)}</b> <code>{_e(s.get("line", ""))}</code>'
                   f'<pre>{_e(s.get("context", ""))}</pre></div>')
    out.append(checks_table(r.checks) if (r.checks or not r.error) else "")
    plots = (r.metrics or {}).get("plots") or {}
    for title, spec in plots.items():
        out.append(plot_figure(str(title), spec))
    m = metrics_html(r.metrics or {})
    if m:
        out.append(f"<h3>metrics</h3>{m}")
    meta = [("time", _time(r)), ("accelerator", _e(r.accel))]
    if r.reproducer:
        meta.append(("reproduce", f"<code>{_e(r.reproducer)}</code>"))
    if r.rundir:
        link = f'<a href="{_e(_href(r.rundir, base))}"><code>{_e(r.rundir)}</code></a>'
        meta.append(("run directory", link))
    out.append(_meta(meta))
    out.append("</details>")
    return "".join(out)


# ---------------------------------------------------------------- pages


def render_html(rec, base: Path | None = None) -> str:
    res = list(rec.results)
    code = results.exit_code(res)
    body = [f"<h1>kexp run {_e(rec.started)}</h1>",
            f'<div class="verdict v{code}">exit code {code}: {_e(EXIT_TEXT.get(code, ""))}</div>',
            _meta([("command", f"<code>{_e(rec.command)}</code>"), ("host", _host(rec.host))]),
            "<h2>Kernels</h2>", kernel_table(rec.kernel, res),
            "<h2>Outcomes</h2>", summary_line(res), outcome_table(res),
            f'<p class="legend">{_e(LEGEND)}</p>',
            "<h2>Scenario runs</h2>"]
    body += [run_details(i, r, base) for i, r in _ordered(res)]
    return _page(f"kexp run {rec.started}", body)


def write_html(rec, path) -> None:
    path = Path(path)
    path.write_text(render_html(rec, path.parent.resolve() if path.parent.exists() else None))


def render_bench_html(bench: dict) -> str:
    title = str(bench.get("title") or "kexp bench")
    body = [f"<h1>{_e(title)}</h1>"]
    meta = [("started", _e(bench.get("started", "")))]
    if bench.get("command"):
        meta.append(("command", f"<code>{_e(bench['command'])}</code>"))
    if bench.get("host"):
        meta.append(("host", _host(bench["host"])))
    body.append(_meta(meta))
    body += ["<h2>Kernels</h2>", kernel_table(bench.get("kernels") or bench.get("kernel") or {})]
    notes = bench.get("notes")
    if notes:
        notes = [notes] if isinstance(notes, str) else list(notes)
        body.append("<h2>Notes</h2><ul>" + "".join(f"<li>{_e(n)}</li>" for n in notes) + "</ul>")
    for t in bench.get("tables") or []:
        body.append(f"<h2>{_e(t.get('title', ''))}</h2>")
        body.append(data_table(list(t.get("columns") or []), [list(r) for r in t.get("rows") or []]))
        if t.get("note"):
            body.append(f'<p class="tnote">{_e(t["note"])}</p>')
    plots = bench.get("plots") or {}
    if plots:
        body.append("<h2>Plots</h2>")
        body += [plot_figure(str(k), v) for k, v in plots.items()]
    return _page(title, body)


def write_bench_html(bench: dict, path) -> None:
    Path(path).write_text(render_bench_html(bench))
