"""Per-cpuset pressure files and kill-on-swap, on a two-node NUMA guest.

cpuset-isolation: pressure in A is counted and announced; B sees nothing.
cpuset-swap-kill: pages a swapping job writes before it dies, per policy and
for a userspace killer (earlyoom).
cpuset-abi: bad input to both files, as root and unprivileged.
"""

from __future__ import annotations

from pathlib import Path

from .. import kernel as kmod
from ..results import ScenarioResult
from ..scenario import Scenario, build_selftest
from ..vm import GuestSpec, NumaNode


def _numa_guest(name: str, timeout: float) -> GuestSpec:
    return GuestSpec(name=name, memory="640M", cpus=2,
                     numa=[NumaNode("320M", "0"), NumaNode("320M", "1")], timeout=timeout)


def parse_killrun(text: str) -> dict[str, dict[str, str]]:
    out = {}
    for line in text.splitlines():
        f = line.split()
        if f:
            out[f[0]] = dict(x.split("=", 1) for x in f[1:] if "=" in x)
    return out


def _int(v: str | None) -> int:
    try:
        return int(v or 0)
    except ValueError:
        return -1


def evaluate_kill(res: ScenarioResult, rundir: Path, kernel) -> None:
    f = rundir / "killrun.txt"
    if f.is_file():
        runs = parse_killrun(f.read_text())
        res.metrics["pages_before_kill"] = {
            p: {"pages": _int(r.get("pages")), "all_pages": _int(r.get("all_pages")),
                "anon_writes": _int(r.get("writes")),
                "job_killed": r.get("hog1") in ("137", "143") or r.get("hog2") in ("137", "143"),
                "seconds": r.get("secs", "")} for p, r in runs.items()}
        res.metrics["plots"] = {"pages written to swap by the job": {
            "unit": "pages", "values": [(p, _int(r.get("pages"))) for p, r in runs.items()]}}


def evaluate_iso(res: ScenarioResult, rundir: Path, kernel) -> None:
    w = rundir / "watch.log"
    if w.is_file():
        lines = w.read_text().splitlines()
        res.metrics["wakeups"] = {
            "A_poll": sum(1 for ln in lines if ln.startswith("poll ") and "/A/" in ln),
            "A_inotify": sum(1 for ln in lines if ln.startswith("inotify ") and "/A/" in ln),
            "B_false_alarms": sum(1 for ln in lines if "/B/" in ln)}


ISOLATION = Scenario(
    name="cpuset-isolation",
    description="A swaps: its cpuset.memory.pressure counts and wakes poll+inotify; B stays silent",
    guest=_numa_guest("iso", 600),
    disks={"swap.img": "1G"},
    feature="cpuset_pressure",
    params={"hog_mb": 448, "quiet_mb": 32, "quiet_passes": 1000000000},
    evaluate=evaluate_iso,
)

SWAP_KILL = Scenario(
    name="cpuset-swap-kill",
    description="swap_kill off/task/cpuset and earlyoom: pages written before the job dies",
    guest=_numa_guest("kill", 1200),
    disks={"swap.img": "1G"},
    feature="cpuset_pressure",
    allow_splats=frozenset({"oom_kill"}),
    params={"hog_mb": 256, "max_pages": 32},
    evaluate=evaluate_kill,
)

SELFTEST = "tools/testing/selftests/cgroup/test_cpuset_pressure.c"


def prepare_abi(kernel: kmod.Kernel, rundir: Path) -> dict:
    """Build the series' cgroup kselftest from the patched tree."""
    return build_selftest(kernel, rundir, SELFTEST,
                          extra=("tools/testing/selftests/cgroup/cgroup_util.c",))


ABI = Scenario(
    name="cpuset-abi",
    description="bad values and unprivileged writes to cpuset.memory.{pressure,swap_kill}",
    guest=GuestSpec(name="cpuabi", memory="256M", cpus=2, timeout=300),
    disks={"swap.img": "256M"},
    feature="cpuset_pressure",
    prepare=prepare_abi,
)

SCENARIOS = [ISOLATION, SWAP_KILL, ABI]
