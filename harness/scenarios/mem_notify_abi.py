"""mem-notify-abi: bad input to /dev/mem_notify and its sysctls, root and unprivileged."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from .. import kernel as kmod
from ..errors import ScenarioError
from ..scenario import Scenario
from ..vm import GuestSpec

SELFTEST = "tools/testing/selftests/mm/mem_notify_test.c"


def prepare(kernel: kmod.Kernel, rundir: Path) -> dict:
    """Build the series' kselftest from the patched tree (the baseline tree has
    none; the same binary then reports the device absent)."""
    src = Path(kernel.src)
    if not (src / SELFTEST).is_file():
        pk = kmod.load_built("patched")
        src = Path(pk.src) if pk else src
    c = src / SELFTEST
    if not c.is_file():
        return {"selftest": ""}
    inc = rundir / "include"
    (inc / "linux").mkdir(parents=True, exist_ok=True)
    shutil.copy(src / "include/uapi/linux/mem_notify.h", inc / "linux/mem_notify.h")
    out = rundir / "mem_notify_test"
    p = subprocess.run(["gcc", "-O2", "-Wall", "-I", str(inc), "-I", str(src / "tools/testing/selftests"),
                        "-o", str(out), str(c)], capture_output=True, text=True)
    if p.returncode:
        raise ScenarioError(f"cannot build {SELFTEST}:\n{p.stderr[-2000:]}")
    return {"selftest": str(out)}


SCENARIO = Scenario(
    name="mem-notify-abi",
    description="bad input to /dev/mem_notify and vm.mem_notify_* as root and nobody; kselftest",
    guest=GuestSpec(name="abi", memory="256M", cpus=2, timeout=300),
    feature="mem_notify",
    prepare=prepare,
)
