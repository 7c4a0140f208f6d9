"""Checks: the guest measures, the host judges.

A scenario declares its checks once (``CheckDef``).  The declared list gives
the guest script its KTAP plan and the names it must report; the guest prints
raw measurements for each check as KTAP diagnostics::

    # kexp-m swap_virtio_disk pswpout_before=10
    # kexp-m swap_virtio_disk pswpout_after=5512
    ok 3 swap_virtio_disk

``ok`` only says "measured"; the verdict is the check's ``judge``, a Python
function of those measurements (and of raw files the guest left in the run
directory), unit-tested on recorded guest output.  A guest that could not
measure prints ``# SKIP reason`` (tool missing) and the judge is not asked.

Check statuses: PASS, FAIL, SKIP, ERROR (the harness could not judge: no
measurement at all), XFAIL (the feature probe found the feature absent on the
unpatched kernel, as expected).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

FEATURE_ABSENT = "feature absent"
_MEAS = re.compile(r"^\s*# kexp-m (\S+) ([A-Za-z0-9_.:-]+)=(.*)$")


@dataclass
class Verdict:
    status: str  # PASS FAIL SKIP
    detail: str = ""
    values: dict = field(default_factory=dict)
    bound: str = ""


def ok(detail: str = "", bound: str = "", **values) -> Verdict:
    return Verdict("PASS", detail, values, bound)


def fail(detail: str, bound: str = "", **values) -> Verdict:
    return Verdict("FAIL", detail, values, bound)


def skip(detail: str, **values) -> Verdict:
    return Verdict("SKIP", detail, values)


def verdict(cond: bool, detail: str, bound: str = "", **values) -> Verdict:
    return Verdict("PASS" if cond else "FAIL", detail, values, bound)


@dataclass
class Judging:
    """What a judge sees: this check's measurements, every check's, the
    scenario parameters, the run directory with the guest's raw files, and
    which kernel ran."""

    m: dict[str, str]
    all: dict[str, dict[str, str]]
    params: dict
    rundir: Path
    kernel: str = "patched"  # patched | baseline
    info: dict = field(default_factory=dict)  # the kernel record (release, head, ...)

    def int(self, key: str, default: int | None = None) -> int | None:
        """An integer measurement; None (or ``default``) if absent or not a number."""
        v = self.m.get(key)
        try:
            return int(v) if v is not None and v != "" else default
        except ValueError:
            return default

    def float(self, key: str, default: float | None = None) -> float | None:
        v = self.m.get(key)
        try:
            return float(v) if v is not None and v != "" else default
        except ValueError:
            return default

    def text(self, name: str) -> str:
        f = self.rundir / name
        return f.read_text(errors="replace") if f.is_file() else ""


Judge = Callable[[Judging], Verdict]


@dataclass(frozen=True)
class CheckDef:
    name: str
    doc: str  # what is measured, and the bound
    judge: Judge
    needs_feature: bool = False  # skipped (not run) where the feature is absent
    probe: bool = False  # the feature probe: PASS = present
    required: bool = True  # in strict mode a SKIP of this check is a FAIL


def kselftest(j: Judging) -> Verdict:
    """A kselftest run in the guest (measurements ``rc`` and ``log``, or
    ``missing``): complete KTAP plan, nothing failed, something passed."""
    from . import ktap

    if "missing" in j.m:
        return fail(f"selftest binary missing: {j.m['missing']}")
    rep = ktap.parse(j.text(j.m.get("log", "")))
    c = rep.counts()
    return verdict(j.int("rc") == 0 and rep.complete and c["FAIL"] == 0 and c["PASS"] > 0,
                   f"rc={j.m.get('rc')}; {c['PASS']} passed, {c['FAIL']} failed, {c['SKIP']} "
                   f"skipped of plan {rep.plan}", "rc 0, complete plan, no failure",
                   **{k.lower(): v for k, v in c.items()})


def kselftest_requiring(cases: tuple[str, ...], why: str = "") -> Judge:
    """Like ``kselftest``, and each of ``cases`` (by the first word of its
    KTAP description) must have run, passed or failed: a skip of one of them
    (no swap, not root, ...) is a failure of the check."""
    from . import ktap

    def judge(j: Judging) -> Verdict:
        v = kselftest(j)
        rep = ktap.parse(j.text(j.m.get("log", "")))
        ran = {c.name.split(":")[0].split()[0]: c.status for c in rep.cases if c.name.strip()}
        missing = [c for c in cases if ran.get(c) not in ("PASS", "FAIL")]
        if v.status != "PASS" or not missing:
            return v
        return fail(f"{v.detail}; not run{' (' + why + ')' if why else ''}: {', '.join(missing)}",
                    **v.values)
    return judge


def feature_probe(doc: str, judge: Judge) -> CheckDef:
    return CheckDef("feature_present", doc, judge, probe=True)


def parse_measurements(text: str) -> dict[str, dict[str, str]]:
    """``# kexp-m CHECK KEY=VALUE`` lines -> {check: {key: value}}.

    Tabs in a value stand for newlines (the guest folds multi-line output)."""
    out: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        line = re.sub(r"^\[\s*\d+\.\d+\]\s?", "", line.rstrip("\r"))
        m = _MEAS.match(line)
        if m:
            out.setdefault(m.group(1), {})[m.group(2)] = m.group(3).replace("\t", "\n").rstrip()
    return out


def strict_mode(env: dict | None = None) -> bool:
    import os

    e = os.environ if env is None else env
    return e.get("STRICT") == "1" or e.get("CI", "").lower() in ("true", "1", "yes")
