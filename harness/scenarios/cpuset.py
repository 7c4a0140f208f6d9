"""Per-cpuset pressure files and kill-on-swap, on a two-node NUMA guest.

cpuset-isolation: pressure in A is counted and announced; B sees nothing.
cpuset-swap-kill: pages a swapping job writes before it dies, per policy and
for a userspace killer (earlyoom).
cpuset-abi: bad input to both files, as root and unprivileged.
"""

from __future__ import annotations

from pathlib import Path

from ..results import ScenarioResult
from ..scenario import Scenario
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


def evaluate_kill(res: ScenarioResult, rundir: Path, kernel) -> None:
    f = rundir / "killrun.txt"
    if f.is_file():
        runs = parse_killrun(f.read_text())
        res.metrics["pages_before_kill"] = {
            p: {"pages": int(r.get("pages", "0")), "anon_writes": int(r.get("writes", "0")),
                "job_killed": r.get("hog1") == "137" or r.get("hog2") == "137",
                "seconds": r.get("secs", "")} for p, r in runs.items()}
        res.metrics["plots"] = {"pages written to swap by the job": {
            "unit": "pages", "values": [(p, int(r.get("pages", "0"))) for p, r in runs.items()]}}


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
    ci=False,  # until the kernel side of the series lands
    params={"hog_mb": 448, "quiet_mb": 32, "quiet_passes": 1000000000},
    evaluate=evaluate_iso,
)

SWAP_KILL = Scenario(
    name="cpuset-swap-kill",
    description="swap_kill off/task/cpuset and earlyoom: pages written before the job dies",
    guest=_numa_guest("kill", 1200),
    disks={"swap.img": "1G"},
    feature="cpuset_pressure",
    ci=False,  # until the kernel side of the series lands
    allow_splats=frozenset({"oom_kill"}),
    params={"hog_mb": 256, "max_pages": 32},
    evaluate=evaluate_kill,
)

ABI = Scenario(
    name="cpuset-abi",
    description="bad values and unprivileged writes to cpuset.memory.{pressure,swap_kill}",
    guest=GuestSpec(name="cpuabi", memory="256M", cpus=2, timeout=300),
    feature="cpuset_pressure",
    ci=False,  # until the kernel side of the series lands
)

SCENARIOS = [ISOLATION, SWAP_KILL, ABI]
