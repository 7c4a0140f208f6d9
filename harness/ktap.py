"""A small KTAP (v1) / TAP 13 parser.

Guests print::

    KTAP version 1
    1..3
    ok 1 kernel_version # 6.12.107-kexp
    not ok 2 swap_works
    # a diagnostic line
    ok 3 numa_nodes # SKIP not requested
    # Totals: pass:1 fail:1 xfail:0 xpass:0 skip:1 error:0

Nested subtests (indented, as KUnit prints) are parsed into ``children``.
Lines that are not KTAP (boot noise, program output) are ignored; a missing
plan or fewer results than planned is reported by ``complete`` being False.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_VERSION = re.compile(r"^\s*(K?TAP) version (\d+)")
_PLAN = re.compile(r"^\s*1\.\.(\d+)")
_RESULT = re.compile(r"^(\s*)(ok|not ok) (\d+)(?: -)?(?: ([^#]*?))?\s*(?:#\s*(.*))?$")
_DIAG = re.compile(r"^\s*# ?(.*)$")


@dataclass
class Case:
    number: int
    name: str
    ok: bool
    directive: str = ""  # text after '#'
    diagnostics: list[str] = field(default_factory=list)
    children: list[Case] = field(default_factory=list)

    @property
    def skipped(self) -> bool:
        return self.directive.upper().startswith("SKIP")

    @property
    def status(self) -> str:
        if self.skipped:
            return "SKIP"
        if self.directive.upper().startswith("ERROR"):
            return "ERROR"
        return "PASS" if self.ok else "FAIL"


@dataclass
class Report:
    version: str = ""
    plan: int | None = None
    cases: list[Case] = field(default_factory=list)
    diagnostics: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.plan is not None and len(self.cases) >= self.plan

    def counts(self) -> dict[str, int]:
        c = {"PASS": 0, "FAIL": 0, "SKIP": 0, "ERROR": 0}
        for k in self.cases:
            c[k.status] += 1
        return c


def parse(text: str) -> Report:
    """Parse the top-level KTAP document found in ``text``.

    Only the first top-level document is returned; indented lines belong to
    the subtest that the next less-indented result line closes.
    """
    rep = Report()
    started = False
    pending: list[Case] = []  # indented results waiting for their parent
    pending_diag: list[str] = []
    for raw in text.splitlines():
        line = raw.rstrip("\r")
        line = re.sub(r"^\[\s*\d+\.\d+\]\s?", "", line)  # printk timestamps (KUnit on console)
        if not started:
            m = _VERSION.match(line)
            if m and not line.startswith((" ", "\t")):
                rep.version = f"{m.group(1)} {m.group(2)}"
                started = True
            continue
        m = _VERSION.match(line)
        if m and not line.startswith((" ", "\t")) and rep.cases:
            break  # a second document starts
        m = _PLAN.match(line)
        if m and not line.startswith((" ", "\t")):
            rep.plan = int(m.group(1))
            continue
        m = _RESULT.match(line)
        if m:
            indent, okword, num, name, directive = m.groups()
            case = Case(int(num), (name or "").strip(), okword == "ok", (directive or "").strip())
            if indent:
                case.diagnostics, pending_diag = pending_diag, []
                pending.append(case)
            else:
                case.children, pending = pending, []
                case.diagnostics, pending_diag = pending_diag, []
                rep.cases.append(case)
            continue
        m = _DIAG.match(line)
        if m:
            txt = m.group(1)
            if txt.startswith(("Totals:", "Subtest:")):
                continue
            pending_diag.append(txt)
            if not line.startswith((" ", "\t")):
                rep.diagnostics.append(txt)
    return rep


def find_all(text: str) -> list[Report]:
    """Every top-level KTAP document in ``text`` (e.g. KUnit suites on a console)."""
    out = []
    chunks = re.split(r"(?m)^(?=(?:\[\s*\d+\.\d+\]\s?)?K?TAP version \d+)", text)
    for ch in chunks:
        if _VERSION.match(re.sub(r"^\[\s*\d+\.\d+\]\s?", "", ch)):
            out.append(parse(ch))
    return out
