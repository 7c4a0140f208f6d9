"""Scan a guest console / dmesg for kernel splats.

Each scenario declares an allow-list: an expected OOM kill is not a splat.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# name -> pattern; the first line of each splat kind.
SPLATS: dict[str, re.Pattern] = {
    "panic": re.compile(r"Kernel panic - not syncing"),
    "oops": re.compile(r"\bOops: |general protection fault|BUG: unable to handle"),
    "bug": re.compile(r"\bBUG: |kernel BUG at "),
    "warning": re.compile(r"WARNING: CPU: \d+ PID: \d+"),
    "lockdep": re.compile(r"WARNING: (possible circular locking|possible recursive locking|"
                          r"inconsistent lock state|suspicious RCU usage)|INFO: possible .*locking"),
    "kasan": re.compile(r"BUG: KASAN: |BUG: KFENCE: "),
    "hung_task": re.compile(r"INFO: task .* blocked for more than \d+ seconds"),
    "rcu_stall": re.compile(r"rcu_(?:sched|preempt|bh) (?:self-detected stall|detected stalls|"
                            r"detected expedited stalls)"),
    "soft_lockup": re.compile(r"watchdog: BUG: soft lockup"),
    "oom_kill": re.compile(r"Out of memory: Killed process|invoked oom-killer"),
}

# Kinds allowed unless a scenario says otherwise: none.
DEFAULT_ALLOW: frozenset[str] = frozenset()


@dataclass
class Splat:
    kind: str
    line_no: int
    line: str
    context: str


def _strip(line: str) -> str:
    return re.sub(r"^\[\s*\d+\.\d+\]\s?", "", line)


def scan(text: str, allow: frozenset[str] | set[str] = DEFAULT_ALLOW,
         allow_patterns: tuple[str, ...] = ()) -> list[Splat]:
    """Return splats in ``text`` whose kind is not in ``allow``.

    ``allow_patterns`` are regexes matched against the splat line itself; a
    match exempts that one splat (e.g. a WARN a scenario provokes on purpose).
    """
    lines = text.splitlines()
    out: list[Splat] = []
    for i, raw in enumerate(lines):
        line = _strip(raw)
        for kind, pat in SPLATS.items():
            if not pat.search(line):
                continue
            if kind == "bug" and ("KASAN" in line or "KFENCE" in line or "soft lockup" in line):
                continue  # reported under its own kind
            if kind == "bug" and "unable to handle" in line:
                continue  # reported as oops
            if kind in allow:
                break
            if any(re.search(p, line) for p in allow_patterns):
                break
            ctx = "\n".join(_strip(x) for x in lines[i:i + 12])
            out.append(Splat(kind, i + 1, line.strip(), ctx))
            break
    return out
