"""mem-notify-abi: bad input to /dev/mem_notify and its sysctls, root and unprivileged."""

from __future__ import annotations

from pathlib import Path

from .. import kernel as kmod
from ..scenario import Scenario, build_selftest
from ..vm import GuestSpec

SELFTEST = "tools/testing/selftests/mm/mem_notify_test.c"


def prepare(kernel: kmod.Kernel, rundir: Path) -> dict:
    return build_selftest(kernel, rundir, SELFTEST, uapi=("mem_notify.h",))


SCENARIO = Scenario(
    name="mem-notify-abi",
    description="bad input to /dev/mem_notify and vm.mem_notify_* as root and nobody; kselftest",
    guest=GuestSpec(name="abi", memory="256M", cpus=2, timeout=300),
    feature="mem_notify",
    prepare=prepare,
)
