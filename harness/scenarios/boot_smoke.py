"""boot-smoke: the built kernel boots and has what every other scenario needs.

Checks: kernel release and built commit, every option the fragments ask for
visible in /proc/config.gz, swap on a virtio disk takes real writes (pswpout
rises under a non-zero hog), cgroup v2 cpuset and memory controllers present,
the NUMA nodes the spec asked for, and PSI.
"""

from __future__ import annotations

import re

from .. import checks as ck
from ..checks import CheckDef, Judging
from ..scenario import Scenario
from ..vm import GuestSpec, NumaNode


def j_kernel_version(j: Judging) -> ck.Verdict:
    want_rel, want_head = j.info.get("release", "?"), j.info.get("head", "?")[:12]
    rel, ver = j.m.get("release", ""), j.m.get("version", "")
    return ck.verdict(rel == want_rel and ver.startswith(f"#{want_head} "),
                      f"uname -r {rel}; uname -v {ver}", f"release {want_rel}, #{want_head}",
                      release=rel, version=ver)


def parse_config(text: str) -> dict[str, str]:
    have = {}
    for line in text.splitlines():
        if line.startswith("CONFIG_") and "=" in line:
            k, v = line.split("=", 1)
            have[k] = v
        else:
            m = re.match(r"^# (CONFIG_\w+) is not set$", line)
            if m:
                have[m.group(1)] = "n"
    return have


def j_config(j: Judging) -> ck.Verdict:
    if not j.m.get("file"):
        return ck.fail("/proc/config.gz missing")
    have = parse_config(j.text(j.m["file"]))
    want = [ln.split("=", 1) for ln in j.text("requested-config.txt").splitlines() if "=" in ln]
    missing = [f"{k}={v} (running: {have.get(k, 'n')})" for k, v in want if have.get(k, "n") != v]
    return ck.verdict(not missing and bool(want),
                      "; ".join(missing[:10]) or f"all {len(want)} requested options present",
                      "every requested option", requested=len(want), missing=len(missing))


def j_swap(j: Judging) -> ck.Verdict:
    if j.int("swapon") != 1:
        return ck.fail(f"mkswap/swapon failed: {j.m.get('devices', '')}")
    b, a, rc = j.int("pswpout_before"), j.int("pswpout_after"), j.int("hog_rc")
    if b is None or a is None:
        return ck.fail("no pswpout in /proc/vmstat (VM_EVENT_COUNTERS off?)")
    return ck.verdict(rc == 0 and a > b, f"pswpout {b} -> {a}, hog rc={rc}",
                      "pswpout rises, hog exits 0", pswpout_delta=a - b, hog_rc=rc)


def j_cgroup(j: Judging) -> ck.Verdict:
    c = j.m.get("controllers", "").split()
    return ck.verdict("cpuset" in c and "memory" in c, f"cgroup.controllers: {' '.join(c)}",
                      "cpuset and memory")


def j_numa(j: Judging) -> ck.Verdict:
    want = j.params["numa_online"]
    nodes = {k: v for k, v in j.m.items() if k.startswith("node")}
    empty = [k for k, v in nodes.items() if re.search(r"memtotal_kb=(0|)\s", v + " ")]
    return ck.verdict(j.m.get("online") == want and not empty,
                      f"online={j.m.get('online')}; " + "; ".join(f"{k}: {v}" for k, v in nodes.items()),
                      f"online={want}, memory on every node")


def j_psi(j: Judging) -> ck.Verdict:
    line = j.m.get("first_line", "")
    return ck.verdict(line.startswith("some avg10="), line, "/proc/pressure/memory readable")


CHECKS = (
    CheckDef("kernel_version", "uname -r and -v: the release and commit that were built", j_kernel_version),
    CheckDef("config_options", "every option the fragments request is in /proc/config.gz", j_config),
    CheckDef("swap_virtio_disk", "pswpout rises while a hog larger than RAM runs with swap on "
             "a virtio disk", j_swap),
    CheckDef("cgroup_v2_controllers", "cgroup v2 offers the cpuset and memory controllers", j_cgroup),
    CheckDef("numa_nodes", "the NUMA nodes the guest spec asked for are online with memory", j_numa),
    CheckDef("psi_memory", "/proc/pressure/memory exists (peers of the benchmarks use it)", j_psi),
)

SCENARIO = Scenario(
    name="boot-smoke",
    description="kernel version/commit, config, swap on virtio disk, cgroup v2, NUMA nodes",
    guest=GuestSpec(name="smoke", memory="384M", cpus=2,
                    numa=[NumaNode("192M", "0"), NumaNode("192M", "1")], timeout=420),
    disks={"swap.img": "512M"},
    params={"hog_mb": 448, "numa_online": "0-1"},
    checks=CHECKS,
)

# negative control of the CRASH outcome: the guest panics the kernel on purpose
# (sysrq-c) half way through; the run must come back CRASH, never ERROR
CRASH = SCENARIO.negative("crash", "the guest panics the kernel (sysrq c): outcome must be CRASH",
                          (), outcome="CRASH", crash=True)
SCENARIOS = [CRASH]
