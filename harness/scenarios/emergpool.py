"""emergpool: the __GFP_EMERGPOOL emergency page pool.

The KUnit suites run at boot (``kunit.enable=1``) and print what they saw:
the host re-judges their figures rather than trusting the suites' verdicts.

- ``exhaustion`` (suite ``emergpool``): memory taken without reclaim until
  ordinary allocations fail; flagged ones then get every free pool page and
  then nothing; the counters move by exactly what happened; freed pages
  refill the pool.
- ``exclusivity`` (suite ``slub_pfmemalloc``, and the exhaustion case):
  ordinary callers served objects of reserve slabs, or pool pages: 0.
- ``sysctl_pool``: from userspace, vm.emergpool_kbytes grows the pool by whole
  pageblocks, which leave free memory, and shrinking gives them back.
- bad input as root, as root without CAP_SYS_ADMIN and as nobody; the
  series' kselftest as root and as nobody.
"""

from __future__ import annotations

import re
from pathlib import Path

from .. import checks as ck
from .. import kernel as kmod
from ..checks import CheckDef, Judging
from ..scenario import Scenario, build_selftest
from ..vm import GuestSpec
from .kunit import suite_judge
from .mem_notify_abi import attempts as abi_attempts

SELFTEST = "tools/testing/selftests/mm/emergpool_test.c"
EINVAL = "Invalid argument"
EACCES = "Permission denied"
EPERM = "Operation not permitted"
PAGE_KB = 4

_EXCL = re.compile(r"# \S+: (memalloc|emergpool) (single|churn|bulk): ordinary (\d+) "
                   r"from-pfmemalloc (\d+); reserve (\d+) from-pfmemalloc (\d+); objs/slab (\d+)")
_EXH = {
    "start": (r"exhaustion: hoarded (\d+) pages, ordinary after (\d+), pool free (\d+)",
              ("hoarded", "ordinary_after", "pool_free")),
    "flagged": (r"exhaustion: flagged got (\d+), from pool (\d+), pool free after (\d+), fail \+(\d+)",
                ("flagged_got", "from_pool", "free_after", "fail_delta")),
    "ordinary": (r"exhaustion: ordinary pages from pool (\d+), refused calls served (\d+)",
                 ("ordinary_from_pool", "refused_served")),
    "memalloc": (r"exhaustion: memalloc took (\d+) of (\d+) min-watermark pages \(cap "
                 r"(?:reached|not reached) at (\d+)\), pool bound (\d+)",
                 ("memalloc_took", "min_wmark_pages", "memalloc_cap", "pool_pages")),
    "after": (r"exhaustion: alloc \+(\d+) refill \+(\d+), pool free back (\d+) of (\d+)",
              ("alloc_delta", "refill_delta", "free_back", "free_before")),
}


def prepare(kernel: kmod.Kernel, rundir: Path) -> dict:
    return build_selftest(kernel, rundir, SELFTEST)


def exclusivity_rows(log: str) -> list[dict]:
    return [dict(flag=m[0], mode=m[1], ordinary=int(m[2]), ordinary_pf=int(m[3]),
                 reserve=int(m[4]), reserve_pf=int(m[5]), per_slab=int(m[6]))
            for m in _EXCL.findall(log)]


def exhaustion_figures(log: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for rx, names in _EXH.values():
        m = re.search(rx, log)
        if m:
            out.update(zip(names, map(int, m.groups()), strict=True))
    return out


def j_present(j: Judging) -> ck.Verdict:
    have = "No such file" not in j.m.get("sysctl", "No such file") and \
        "No such file" not in j.m.get("proc", "No such file")
    return ck.verdict(have, f"vm.emergpool_kbytes and /proc/emergpool {'present' if have else 'absent'}"
                      f"; {j.m.get('vmstat', '0')} emergpool lines in /proc/vmstat")


def j_exclusivity(j: Judging) -> ck.Verdict:
    log = j.text(j.m.get("log", ""))
    rows = exclusivity_rows(log)
    fig = exhaustion_figures(log)
    flags = {r["flag"] for r in rows}
    leaks = [f"{r['flag']} {r['mode']}: {r['ordinary_pf']} of {r['ordinary']}" for r in rows
             if r["ordinary_pf"]]
    invalid = [f"{r['flag']} {r['mode']}" for r in rows if r["reserve_pf"] < 1]
    pool_leak = fig.get("ordinary_from_pool")
    problems = leaks + [f"no reserve slab in {x}" for x in invalid]
    if pool_leak is None:
        problems.append("exhaustion figures missing")
    elif pool_leak:
        problems.append(f"{pool_leak} ordinary pages from the pool")
    if flags != {"memalloc", "emergpool"}:
        problems.append(f"cases ran for {sorted(flags) or 'nothing'}")
    values = {f"{r['flag']}_{r['mode']}_leaked": r["ordinary_pf"] for r in rows}
    return ck.verdict(not problems, "; ".join(problems) or
                      f"{len(rows)} slab cases, {sum(r['ordinary'] for r in rows)} ordinary objects, "
                      f"none from a reserve slab; 0 ordinary pages from the pool",
                      "0 ordinary objects or pages from reserves", cases=len(rows),
                      ordinary_from_pool=pool_leak, **values)


def j_exhaustion(j: Judging) -> ck.Verdict:
    f = exhaustion_figures(j.text(j.m.get("log", "")))
    need = [n for _, names in _EXH.values() for n in names]
    missing = [n for n in need if n not in f]
    if missing:
        return ck.fail(f"exhaustion figures missing: {', '.join(missing)}")
    rules = [
        ("memory was exhausted", f["hoarded"] > 0),
        ("the pool had free pages", f["pool_free"] > 0),
        ("every free pool page went to the flagged caller", f["from_pool"] == f["pool_free"]),
        ("then the pool was empty", f["free_after"] == 0),
        ("the empty pool counted a failure", f["fail_delta"] >= 1),
        ("emergpool_alloc counted the pages served", f["alloc_delta"] == f["from_pool"]),
        ("freed pages refilled the pool, counted", f["refill_delta"] == f["from_pool"]),
        ("the pool was full again", f["free_back"] == f["free_before"] == f["pool_free"]),
    ]
    bad = [name for name, ok in rules if not ok]
    return ck.verdict(not bad, "; ".join(bad) + " failed" if bad else
                      f"{f['from_pool']} pool pages served under exhaustion, then "
                      f"{f['fail_delta']} failure(s), all {f['refill_delta']} refilled; "
                      f"__GFP_MEMALLOC took {f['memalloc_took']} pages of the "
                      f"{f['min_wmark_pages']}-page min reserve, all it asked for (the test stops "
                      f"it at {f['memalloc_cap']}): no bound of its own",
                      "pool served exactly, counters exact", **f)


def _proc(s: str) -> dict[str, int]:
    out = {}
    for item in s.split(";"):
        parts = item.split()
        if len(parts) == 2 and parts[1].isdigit():
            out[parts[0]] = int(parts[1])
    return out


def _vmstat(s: str) -> dict[str, int]:
    out = {}
    for item in s.split(";"):
        k, _, v = item.partition("=")
        if v.strip().isdigit():
            out[k] = int(v)
    return out


# /proc/meminfo fields that, with MemFree, account for memory in use
MEMINFO_USERS = ("Buffers", "Cached", "SwapCached", "AnonPages", "Slab", "KernelStack",
                 "PageTables", "SecPageTables", "Percpu", "VmallocUsed")


def meminfo(text: str) -> dict[str, int]:
    out = {}
    for line in text.replace("\t", "\n").splitlines():
        k, _, v = line.partition(":")
        f = v.split()
        if f and f[0].isdigit():
            out[k.strip()] = int(f[0])
    return out


def accounted_kb(text: str, pcp_pages: int) -> int:
    """KiB of memory free or used by something /proc/meminfo names, with the
    free pages on per-cpu lists (not in MemFree)."""
    mi = meminfo(text)
    if "MemFree" not in mi:
        raise ValueError("no MemFree in /proc/meminfo")
    return mi["MemFree"] + PAGE_KB * pcp_pages + sum(mi.get(k, 0) for k in MEMINFO_USERS)


def j_sysctl_pool(j: Judging) -> ck.Verdict:
    m = j.m
    try:
        block = int(m["block_pages"])
        p = {t: _proc(m[f"{t}_proc"]) for t in ("before", "grown", "shrunk")}
        v = {t: _vmstat(m[f"{t}_vmstat"]) for t in ("before", "grown", "shrunk")}
        # memory the rest of the system can account for (free, on per-cpu
        # lists, or used by something /proc/meminfo names): the pool is what
        # leaves it; processes ending meanwhile do not count against it
        free = {t: accounted_kb(m[f"{t}_meminfo"], int(m[f"{t}_pcp_pages"]))
                for t in ("before", "grown", "shrunk")}
        want_blocks = int(j.params.get("grow_blocks", 4))
        grown = p["grown"]["pages"] - p["before"]["pages"]
        back = p["grown"]["pages"] - p["shrunk"]["pages"]
    except (KeyError, ValueError) as e:
        return ck.fail(f"measurement missing or malformed: {e}")
    drop_kb = free["before"] - free["grown"]
    nb = max(block, 1)
    ev = {k: {t: v[t].get(f"emergpool_{k}", 0) for t in v} for k in ("grow", "shrink")}
    rules = [
        (f"grew by {want_blocks} blocks", want_blocks > 0 and grown >= want_blocks * block),
        ("whole pageblocks", block > 0 and grown % block == 0),
        ("nr_emergpool agrees", v["grown"].get("nr_emergpool") == p["grown"]["pages"]),
        ("the new pages are free in the pool",
         v["grown"].get("nr_free_emergpool", 0) - v["before"].get("nr_free_emergpool", 0) == grown),
        ("accounted memory dropped by the pool's growth", drop_kb >= grown * PAGE_KB * 9 // 10),
        ("emergpool_grow counted the blocks", ev["grow"]["grown"] - ev["grow"]["before"] == grown // nb),
        ("shrank back", p["shrunk"]["pages"] == p["before"]["pages"]),
        ("emergpool_shrink counted the blocks",
         ev["shrink"]["shrunk"] - ev["shrink"]["grown"] == back // nb),
        ("accounted memory came back", free["shrunk"] - free["grown"] >= back * PAGE_KB * 9 // 10),
    ]
    bad = [name for name, ok in rules if not ok]
    return ck.verdict(not bad, ("not: " + "; ".join(bad)) if bad else
                      f"+{grown} pages ({grown // max(block, 1)} blocks) in {m.get('grow_ms')} ms, "
                      f"accounted -{drop_kb} KiB; back in {m.get('shrink_ms')} ms, accounted "
                      f"+{free['shrunk'] - free['grown']} KiB",
                      "pool follows the sysctl in whole blocks, outside accounted memory",
                      grown_pages=grown, free_drop_kb=drop_kb, block_pages=block,
                      grow_ms=m.get("grow_ms"), shrink_ms=m.get("shrink_ms"))


def attempts(m: dict[str, str]) -> list[dict[str, str]]:
    return abi_attempts(m, first="who")


def j_bad(j: Judging) -> ck.Verdict:
    a = attempts(j.m)
    bad = [f"{t['value']!r}: {t['error'] or 'accepted'}"
           + ("" if t["before"] == t["after"] else f", changed {t['before']}->{t['after']}")
           for t in a if EINVAL not in t["error"] or t["before"] != t["after"]]
    return ck.verdict(len(a) >= 5 and not bad, "; ".join(bad) or
                      f"all {len(a)} rejected with EINVAL, value unchanged",
                      "EINVAL, value unchanged", attempts=len(a), wrong=len(bad))


def j_unpriv(j: Judging) -> ck.Verdict:
    want = {"nobody": EACCES, "nocap": EPERM}
    a = attempts(j.m)
    bad = [f"{t['who']}: {t['error'] or 'accepted'}" for t in a
           if want.get(t["who"], "?") not in t["error"] or t["before"] != t["after"]]
    mode, uread = j.m.get("proc_mode", ""), j.m.get("proc_user_read", "")
    if mode != "444":
        bad.append(f"/proc/emergpool mode {mode}")
    if uread != "ok":
        bad.append("nobody cannot read /proc/emergpool")
    return ck.verdict(len(a) == 2 and not bad, "; ".join(bad) or
                      "nobody: EACCES; root without CAP_SYS_ADMIN: EPERM; unchanged; "
                      "/proc/emergpool 0444, readable by nobody",
                      "EACCES/EPERM, value unchanged", attempts=len(a), wrong=len(bad))


CHECKS = (
    ck.feature_probe("vm.emergpool_kbytes and /proc/emergpool exist", j_present),
    CheckDef("kunit_emergpool", "every case of KUnit suite emergpool passed", suite_judge("emergpool"),
             needs_feature=True),
    CheckDef("exclusivity", "no ordinary caller got an object of a reserve slab (fastpath, churn, "
             "bulk; __GFP_MEMALLOC and __GFP_EMERGPOOL) or a pool page under exhaustion",
             j_exclusivity, needs_feature=True),
    CheckDef("exhaustion", "under exhaustion the flagged caller gets exactly the pool's free pages, "
             "then fails; counters and refill exact", j_exhaustion, needs_feature=True),
    CheckDef("sysctl_pool", "vm.emergpool_kbytes grows the pool by whole blocks that leave the "
             "memory /proc/meminfo accounts for, "
             "and shrinks it back; counters agree", j_sysctl_pool, needs_feature=True),
    CheckDef("sysctl_bad_values", "malformed and out-of-range vm.emergpool_kbytes: EINVAL, "
             "value kept", j_bad, needs_feature=True),
    CheckDef("sysctl_unprivileged", "nobody and root without CAP_SYS_ADMIN cannot change "
             "vm.emergpool_kbytes", j_unpriv, needs_feature=True),
    CheckDef("kselftest_root", "the series' emergpool kselftest as root: complete, no failure, "
             "the grow and shrink cases run",
             ck.kselftest_requiring(("grow", "shrink", "bad_values_einval"), "root"),
             needs_feature=True),
    CheckDef("kselftest_user", "the same kselftest as nobody", ck.kselftest, needs_feature=True),
)

SCENARIO = Scenario(
    name="emergpool",
    description="__GFP_EMERGPOOL pool: exhaustion and exclusivity (KUnit), sysctl sizing, bad input",
    guest=GuestSpec(name="emergpool", memory="256M", cpus=2, append=["kunit.enable=1"],
                    timeout=420),
    feature="emergpool",
    params={"grow_blocks": 4},
    prepare=prepare,
    checks=CHECKS,
)

# negative control: the pool's KUnit suite filtered out at boot (only the SLUB
# test runs), and /proc/emergpool made world-writable behind the check's back
SCENARIOS = [SCENARIO.negative(
    "neg", "KUnit suite emergpool filtered out, /proc/emergpool chmod 0666: the suite, "
    "exhaustion and permission checks must fail",
    ("kunit_emergpool", "exhaustion", "sysctl_unprivileged"), chmod_proc="0666",
    guest=GuestSpec(name="emergpool", memory="256M", cpus=2, timeout=420,
                    append=["kunit.enable=1", "kunit.filter_glob=slub_pfmemalloc*"]))]


def j_slub_ran(j: Judging) -> ck.Verdict:
    rows = exclusivity_rows(j.text(j.m.get("log", "")))
    return ck.verdict(bool(rows), f"{len(rows)} slub_pfmemalloc cases printed their counts")


def j_slub_figures(j: Judging) -> ck.Verdict:
    """What mainline's SLUB does is measured, not asserted: the check passes
    when every case ran and made its reserve slab; the counts are its values."""
    rows = [r for r in exclusivity_rows(j.text(j.m.get("log", ""))) if r["flag"] == "memalloc"]
    modes = {r["mode"] for r in rows}
    ok = modes == {"single", "churn", "bulk"} and all(r["reserve_pf"] >= 1 for r in rows)
    return ck.verdict(ok, "; ".join(f"{r['mode']}: {r['ordinary_pf']} of {r['ordinary']} ordinary "
                                    f"objects from the reserve slab" for r in rows) or "no figures",
                      "every case ran and made its reserve slab",
                      **{f"{r['mode']}_leaked": r["ordinary_pf"] for r in rows})


# make bench: the SLUB exclusivity test alone, on the probe kernel (v6.12 with
# only that test, patches/probe): mainline's counts beside the series'
SLUB_PROBE = Scenario(
    name="slub-exclusivity",
    description="bench only: KUnit slub_pfmemalloc counts (run on the probe kernel for v6.12's)",
    guest=GuestSpec(name="kunit", memory="256M", cpus=2, timeout=300,
                    append=["kunit.enable=1", "kunit.filter_glob=slub_pfmemalloc*"]),
    template="kunit.sh.j2",
    feature="slub_pfmemalloc test",
    params={"suites": ["slub_pfmemalloc"]},
    checks=(ck.feature_probe("the SLUB exclusivity test ran at boot", j_slub_ran),
            CheckDef("suite_slub_pfmemalloc", "every case ran and made its reserve slab; the "
                     "ordinary objects served from it are the figures", j_slub_figures)),
    ci=False,
)
SCENARIOS.append(SLUB_PROBE)
