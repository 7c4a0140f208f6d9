"""mem-notify-abi: bad input to /dev/mem_notify and its sysctls, root and unprivileged.

Every attempt is recorded raw in the guest as ``sysctl|value|error|before|after``;
the host decides what counts as a clear rejection.
"""

from __future__ import annotations

from pathlib import Path

from .. import checks as ck
from .. import kernel as kmod
from ..checks import CheckDef, Judging
from ..scenario import Scenario, build_selftest
from ..vm import GuestSpec

SELFTEST = "tools/testing/selftests/mm/mem_notify_test.c"
EINVAL = "Invalid argument"
DENIED = ("Permission denied", "Operation not permitted")


def prepare(kernel: kmod.Kernel, rundir: Path) -> dict:
    return build_selftest(kernel, rundir, SELFTEST, uapi=("mem_notify.h",))


def attempts(m: dict[str, str], first: str = "sysctl") -> list[dict[str, str]]:
    """``tryN`` measurements ``<first>|value|error|before|after``, in order
    (``first`` names the first field: the sysctl, or who tried)."""
    out = []
    for k in sorted((k for k in m if k.startswith("try")), key=lambda k: int(k[3:])):
        f = (m[k].split("|") + [""] * 5)[:5]
        out.append(dict(zip((first, "value", "error", "before", "after"), f, strict=True)))
    return out


def j_present(j: Judging) -> ck.Verdict:
    return ck.verdict(j.m.get("is_char") == "1", j.m.get("node", ""), "a character device")


def j_bad(j: Judging) -> ck.Verdict:
    a = attempts(j.m)
    bad = [f"{t['sysctl']}={t['value']!r}: {t['error'] or 'accepted'}"
           + ("" if t["before"] == t["after"] else f", changed {t['before']}->{t['after']}")
           for t in a if EINVAL not in t["error"] or t["before"] != t["after"]]
    return ck.verdict(bool(a) and not bad, "; ".join(bad) or f"all {len(a)} rejected with EINVAL, "
                      "values unchanged", "EINVAL, value unchanged", attempts=len(a), wrong=len(bad))


def j_good(j: Judging) -> ck.Verdict:
    a = attempts(j.m)
    bad = [f"{t['sysctl']}={t['value']}: {t['error'] or 'read back ' + t['after']}"
           for t in a if t["error"] or t["after"] != t["value"]]
    return ck.verdict(bool(a) and not bad, "; ".join(bad) or f"all {len(a)} accepted and read back",
                      "accepted, read back", attempts=len(a), wrong=len(bad))


def j_unpriv(j: Judging) -> ck.Verdict:
    a = attempts(j.m)
    bad = [f"{t['sysctl']}: {t['error'] or 'accepted'}" for t in a
           if not any(d in t["error"] for d in DENIED) or t["before"] != t["after"]]
    return ck.verdict(bool(a) and not bad, "; ".join(bad) or f"all {len(a)} refused, unchanged",
                      "EACCES/EPERM, value unchanged", attempts=len(a), wrong=len(bad))


def j_opener_limit(j: Judging) -> ck.Verdict:
    """From the opener's side: nobody's first ``limit`` opens succeed and the
    next one fails with EMFILE; root's ``limit + 1`` all succeed."""
    lim = j.int("limit", 0)
    nobody = [r for r in j.m.get("nobody", "").split(",") if r]
    root = [r for r in j.m.get("root", "").split(",") if r]
    want = ["ok"] * lim + ["Too many open files"]
    good = lim > 0 and nobody == want and root == ["ok"] * (lim + 1)
    return ck.verdict(good, f"limit {lim}; nobody: {nobody.count('ok')} opened, then "
                      f"{nobody[lim] if len(nobody) > lim else 'nothing'}; root: "
                      f"{root.count('ok')} of {len(root)} opened",
                      f"nobody: {lim} then EMFILE; root: not limited", limit=lim,
                      nobody_opened=nobody.count("ok"), root_opened=root.count("ok"))


# cases of the kselftest that need root and swap: skipping them is a failure
ROOT_CASES = ("swap_event", "clear_event", "pageout_no_event", "privileged_first",
              "user_limit_emfile", "user_limit_exempt", "user_limit_userns")


def j_mode(j: Judging) -> ck.Verdict:
    mode, rw, uw, ur = (j.m.get(k, "") for k in ("mode", "root_write_open", "user_write_open",
                                                  "user_read_open"))
    good = mode == "444" and bool(rw) and bool(uw) and not ur
    return ck.verdict(good, f"mode {mode}; root open for write: {rw or 'succeeded'}; nobody: "
                      f"{uw or 'succeeded'}; nobody read: {ur or 'ok'}",
                      "0444; opens for write fail; nobody may read", mode=mode)


CHECKS = (
    ck.feature_probe("/dev/mem_notify exists as a character device", j_present),
    CheckDef("kselftest_root", "the series' mm kselftest run as root with swap on: complete, "
             "no failure, the swap, ordering and limit cases run",
             ck.kselftest_requiring(ROOT_CASES, "root, swap on"), needs_feature=True),
    CheckDef("kselftest_user", "the same kselftest as nobody", ck.kselftest, needs_feature=True),
    CheckDef("sysctl_bad_values", "out-of-range and malformed vm.mem_notify_* writes: EINVAL "
             "and the old value kept", j_bad, needs_feature=True),
    CheckDef("sysctl_good_values", "in-range writes are taken and read back", j_good,
             needs_feature=True),
    CheckDef("sysctl_unprivileged", "nobody cannot change vm.mem_notify_*", j_unpriv,
             needs_feature=True),
    CheckDef("opener_limit", "nobody holds at most vm.mem_notify_max_user_opens files (the "
             "next open() is EMFILE); root is not limited", j_opener_limit, needs_feature=True),
    CheckDef("device_mode", "the node is 0444; opening it for write fails as root and as nobody; "
             "nobody can open it for reading", j_mode, needs_feature=True),
)

SCENARIO = Scenario(
    name="mem-notify-abi",
    description="bad input to /dev/mem_notify and vm.mem_notify_* as root and nobody; kselftest",
    guest=GuestSpec(name="abi", memory="256M", cpus=2, timeout=420),
    feature="mem_notify",
    disks={"swap.img": "512M"},
    prepare=prepare,
    checks=CHECKS,
)

# negative control: an administrator made the node world-writable
SCENARIOS = [SCENARIO.negative("neg", "device node chmod 0666 and the opener limit raised "
                               "behind the check's back: device_mode and opener_limit must fail",
                               ("device_mode", "opener_limit"), chmod_device="0666",
                               user_opens=1000)]
