"""Scenario registry: every module here that defines SCENARIO."""

from __future__ import annotations

import importlib
import pkgutil

from ..errors import HarnessError
from ..scenario import Scenario


def all_scenarios() -> dict[str, Scenario]:
    out: dict[str, Scenario] = {}
    for m in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        mod = importlib.import_module(f"{__name__}.{m.name}")
        for scn in [getattr(mod, "SCENARIO", None), *getattr(mod, "SCENARIOS", [])]:
            if scn is not None:
                out[scn.name] = scn
    return out


def get(name: str) -> Scenario:
    s = all_scenarios()
    if name not in s:
        raise HarnessError(f"unknown scenario {name!r}; known: {', '.join(s)}")
    return s[name]
