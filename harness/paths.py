"""Well-known locations.

Everything large (kernel source, build trees, ccache, run results of kernel
builds) lives in a cache directory outside the work tree so that a fresh clone
(CI) reuses it: ``$KEXP_CACHE`` or ``${XDG_CACHE_HOME:-~/.cache}/kexp``.
"""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PATCHES = REPO / "patches"
KCONFIG = REPO / "kconfig"
TEMPLATES = Path(__file__).resolve().parent / "templates"
GUEST_SRC = Path(__file__).resolve().parent / "guest"


def cache_dir() -> Path:
    env = os.environ.get("KEXP_CACHE")
    if env:
        p = Path(env)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        p = Path(base) / "kexp"
    p.mkdir(parents=True, exist_ok=True)
    return p


def runs_dir() -> Path:
    env = os.environ.get("KEXP_RUNS")
    p = Path(env) if env else REPO / "out" / "runs"
    p.mkdir(parents=True, exist_ok=True)
    return p
