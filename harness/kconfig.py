"""Kconfig fragments: parse, merge (scripts/kconfig/merge_config.sh), validate.

A fragment is a plain ``.config`` snippet.  After merging on top of tinyconfig
and ``olddefconfig``, every option a fragment asks for is checked against the
resulting ``.config``; any option that did not survive (a missing dependency,
a typo, an option the tree does not know) is named in a ConfigError.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError
from .paths import KCONFIG

_SET = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
_UNSET = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set$")

# Fragments applied to every kernel, in merge order.
COMMON = ["base", "vm", "mm-pressure", "net-swap", "kunit"]
# Options the series adds: only the patched tree knows them.
SERIES = ["series"]
# Options of the probe kernel (base tree + patches/probe): the measuring tests only.
PROBE = ["probe"]
DEBUG = ["debug"]


@dataclass(frozen=True)
class Entry:
    name: str
    value: str  # "y", "m", a string/number literal, or "n" for "is not set"
    source: str = ""
    line: int = 0


def parse(text: str, source: str = "") -> dict[str, Entry]:
    """Parse .config text; later lines override earlier ones."""
    out: dict[str, Entry] = {}
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        m = _SET.match(line)
        if m:
            out[m.group(1)] = Entry(m.group(1), m.group(2), source, no)
            continue
        m = _UNSET.match(line)
        if m:
            out[m.group(1)] = Entry(m.group(1), "n", source, no)
            continue
        if line and not line.startswith("#"):
            raise ConfigError(f"{source}:{no}: not a Kconfig line: {raw!r}")
    return out


def parse_file(path: Path) -> dict[str, Entry]:
    return parse(path.read_text(), str(path))


def fragment_paths(names: list[str], kdir: Path = KCONFIG) -> list[Path]:
    paths = []
    for n in names:
        p = kdir / f"{n}.config"
        if not p.is_file():
            raise ConfigError(f"missing config fragment {p}")
        paths.append(p)
    return paths


def requested(fragments: list[Path]) -> dict[str, Entry]:
    req: dict[str, Entry] = {}
    for f in fragments:
        req.update(parse_file(f))
    return req


def validate(config: dict[str, Entry], fragments: list[Path]) -> list[str]:
    """Return one message per requested option that the final config lacks."""
    problems = []
    for name, want in sorted(requested(fragments).items()):
        have = config.get(name)
        have_v = have.value if have else "n"
        if have_v != want.value:
            problems.append(
                f"{name}={want.value} requested by {Path(want.source).name}:{want.line} "
                f"but the final .config has {name}={have_v}"
                + ("" if have else " (unknown to this tree or dependencies unmet)")
            )
    return problems


def check_or_raise(config_path: Path, fragments: list[Path]) -> None:
    problems = validate(parse_file(config_path), fragments)
    if problems:
        raise ConfigError(
            f"{len(problems)} requested option(s) did not survive olddefconfig:\n  "
            + "\n  ".join(problems)
        )


def fragments_hash(fragments: list[Path]) -> str:
    h = hashlib.sha256()
    for f in fragments:
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]
