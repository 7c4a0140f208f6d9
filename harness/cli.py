"""Command line: python -m harness {fetch,kernel,run,list,shell,parse,scan}."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
import traceback
from pathlib import Path

from . import kernel as kmod
from . import ktap, results, scenario, vm
from .errors import HarnessError
from .paths import runs_dir
from .printer import log
from .scenarios import all_scenarios, get


def _kernel(kind: str, args) -> kmod.Kernel:
    if getattr(args, "no_build", False):
        k = kmod.load_built(kind, args.ksrc, args.debug)
        if k is None:
            raise HarnessError(f"no {kind} kernel built yet (run make kernel)")
        return k
    return kmod.build(kind, ksrc=args.ksrc, debug=args.debug)


def cmd_fetch(args) -> int:
    bt = kmod.base_tree(args.ksrc, args.refresh)
    print(json.dumps({"path": str(bt.path), "version": bt.version, "base": bt.base,
                      "origin": bt.origin}, indent=1))
    return 0


def cmd_kernel(args) -> int:
    kind = "baseline" if args.baseline else ("probe" if args.probe else "patched")
    k = _kernel(kind, args)
    print(json.dumps(k.to_dict(), indent=1))
    return 0


def cmd_list(args) -> int:
    for name, s in all_scenarios().items():
        tag = (" [negative control]" if s.expect_outcome else "") if s.expect_outcome or s.ci \
            else " [not in make test]"
        feat = f" (feature: {s.feature})" if s.feature else ""
        print(f"{name:22} {s.description}{feat}{tag}")
    return 0


def cmd_checks(args) -> int:
    """Every declared check of every scenario, with what it measures."""
    scns = all_scenarios()
    for name, s in scns.items():
        if s.expect_outcome:
            continue
        negs = [n for n, x in scns.items() if x.base == name and x.expect_outcome]
        print(f"\n{name}" + (f" (feature: {s.feature})" if s.feature else "")
              + (f"; negative controls: {', '.join(negs)}" if negs else ""))
        for c in s.checks:
            tag = "probe" if c.probe else ("needs feature" if c.needs_feature else "both kernels")
            shown = [n for n in negs if c.name in scns[n].expect_fail]
            print(f"  {c.name:24} [{tag}] {c.doc}"
                  + (f"  (made to fail by {', '.join(shown)})" if shown else ""))
    return 0


def cmd_run(args) -> int:
    names = args.scenarios or [n for n, s in all_scenarios().items() if s.ci or not args.ci_only]
    scns = [with_params(get(n), args.param or []) for n in names]
    kinds = ["baseline"] if args.baseline else (["patched", "baseline"] if args.both else ["patched"])
    top = new_run_dir(runs_dir(), results.stamp())
    res: list[results.ScenarioResult] = []
    kinfo: dict = {}
    cmdline = "python -m harness " + shlex.join(sys.argv[1:])
    try:
        for kind in kinds:
            try:
                k = _kernel(kind, args)
            except Exception as e:  # HarnessError or a harness bug: both exit 2
                stage = getattr(e, "stage", "harness")
                log("ERROR", f"{kind} kernel: {stage}: {e}")
                for s in scns:
                    res.append(results.ScenarioResult(s.name, kind, "ERROR", error=f"{stage}: {e}"))
                continue
            kinfo[kind] = k.to_dict()
            for s in scns:
                log("scenario", f"{s.name} on the {kind} kernel ({k.release})")
                res.append(scenario.run(s, k, top / s.name / kind))
    except KeyboardInterrupt:
        # the record must not read as a pass: the scenario that was running
        # and those not run yet are ERROR "interrupted"
        done = {(r.scenario, r.kernel) for r in res}
        for kind in kinds:
            for s in scns:
                if (s.name, kind) not in done:
                    res.append(results.ScenarioResult(s.name, kind, "ERROR",
                                                      error="interrupted (Ctrl-C or SIGTERM)"))
        raise
    finally:
        # written on every exit, Ctrl-C included, with what ran so far
        rec = results.RunRecord(started=top.name, kernel=kinfo, results=res, command=cmdline)
        write_all(rec, top)
    return results.exit_code(res)


def with_params(scn, pairs: list[str]):
    """``scn`` with parameters overridden by ``KEY=VALUE`` pairs (a value is
    read as the type of the parameter it replaces)."""
    import dataclasses

    from .errors import HarnessError

    params = dict(scn.params)
    for kv in pairs:
        k, sep, v = kv.partition("=")
        if not sep or k not in params:
            raise HarnessError(f"--param {kv!r}: {scn.name} has parameters "
                               f"{', '.join(sorted(params))}")
        old = params[k]
        try:
            if isinstance(old, bool):
                if v not in ("0", "1", "true", "false"):
                    raise ValueError(v)
                params[k] = v in ("1", "true")
            elif isinstance(old, (int, float)):
                params[k] = type(old)(v)
            else:
                params[k] = v
        except ValueError:
            raise HarnessError(f"--param {kv!r}: {k} takes a {type(old).__name__}") from None
    return dataclasses.replace(scn, params=params) if pairs else scn


def new_run_dir(parent: Path, stamp: str) -> Path:
    """A run directory of its own (two runs in one second get -1, -2, ...),
    and ``latest`` pointing at it (replaced atomically)."""
    for i in range(1000):
        top = parent / (stamp if i == 0 else f"{stamp}-{i}")
        try:
            top.mkdir(parents=True)
            break
        except FileExistsError:
            continue
    else:
        raise HarnessError(f"cannot create a run directory under {parent}")
    tmp = parent / f".latest-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(top.name)
    os.replace(tmp, parent / "latest")
    return top


def write_all(rec: results.RunRecord, top: Path) -> None:
    results.write_json(rec, top / "results.json")
    results.write_junit(rec, top / "junit.xml")
    txt = results.table(rec.results)
    (top / "report.txt").write_text(txt + "\n")
    try:
        results.write_html(rec, top / "report.html")
    except Exception as e:  # the report is a view; results.json is the record
        log("warning", f"report.html not written: {type(e).__name__}: {e}")
    print(txt)
    print(f"results: {top}/results.json  junit: {top}/junit.xml  report: {top}/report.html")


def cmd_shell(args) -> int:
    k = _kernel("baseline" if args.baseline else "patched", args)
    spec = get(args.scenario).guest if args.scenario else vm.GuestSpec(name="shell", timeout=24 * 3600)
    spec.timeout = 24 * 3600
    g = vm.ConsoleGuest(spec, k.image, runs_dir() / "shell")
    g.wait_prompt()
    print(f"\n[kexp] {k.kind} kernel {k.release}; 'poweroff -f' or Ctrl-] to leave\n")
    g.child.sendline("uname -a")
    g.interact()
    g.close()
    return 0


def cmd_bench(args) -> int:
    from . import bench

    only = [x for o in (args.only or []) for x in o.split(",") if x]
    bad = sorted(set(only) - set(bench.SECTIONS))
    if bad:
        raise HarnessError(f"--only: unknown section(s) {', '.join(bad)}; "
                           f"known: {', '.join(bench.SECTIONS)}")
    return bench.main(runs=args.runs, reps=args.reps, ksrc=args.ksrc, debug=args.debug,
                      kill_runs=args.kill_runs, cost_rounds=args.cost_rounds,
                      insn_reps=args.insn_reps, only=only or None, no_build=args.no_build,
                      netswap_runs=args.netswap_runs, emergpool_boots=args.emergpool_boots)


def cmd_judge(args) -> int:
    """Judge a saved run directory again (after changing a judge, say)."""
    d = Path(args.rundir)
    info = {}
    rj = d.parent.parent / "results.json"
    if rj.is_file():
        info = json.loads(rj.read_text()).get("kernel", {}).get(args.kind, {})
    res = scenario.rejudge(get(args.scenario), args.kind, d, info)
    for c in res.checks:
        print(f"{c.status:5} {c.name}: {c.detail}" + (f"  [bound: {c.bound}]" if c.bound else ""))
    print(f"outcome {res.outcome}" + (f": {res.error}" if res.error else ""))
    return results.exit_code([res])


def cmd_parse(args) -> int:
    rep = ktap.parse(Path(args.log).read_text(errors="replace"))
    for c in rep.cases:
        print(f"{c.status:5} {c.number:3} {c.name}" + (f"  # {c.directive}" if c.directive else ""))
    print(f"plan={rep.plan} complete={rep.complete} {rep.counts()}")
    return 0 if rep.complete and not rep.counts()["FAIL"] else 1


def cmd_scan(args) -> int:
    from . import console

    sp = console.scan(Path(args.log).read_text(errors="replace"), set(args.allow or []))
    for s in sp:
        print(f"{s.kind}: line {s.line_no}: {s.line}")
    return 1 if sp else 0


def cmd_host_check(args) -> int:
    from . import hostcheck

    problems = hostcheck.check()
    for p in problems:
        print(f"host-check: {p}")
    if not problems:
        print("host-check: ok: no guest-only daemon (sshd, nbd-server, earlyoom) runs or is enabled "
              "on the host")
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="harness", description=__doc__)
    ap.add_argument("--ksrc", default=os.environ.get("KSRC") or None,
                    help="use this clean 6.12.y git tree instead of fetching")
    ap.add_argument("--debug", action="store_true", default=os.environ.get("DEBUG") == "1",
                    help="also merge kconfig/debug.config (KASAN, lockdep, ...)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("fetch", help="obtain pristine v6.12.y")
    p.add_argument("--refresh", action="store_true")
    p.set_defaults(fn=cmd_fetch)
    p = sub.add_parser("kernel", help="build the patched (or --baseline, or --probe) kernel")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--baseline", action="store_true")
    g.add_argument("--probe", action="store_true",
                   help="the base tree with only patches/probe (mainline figures for make bench)")
    p.set_defaults(fn=cmd_kernel, no_build=False)
    p = sub.add_parser("list", help="list scenarios")
    p.set_defaults(fn=cmd_list)
    p = sub.add_parser("checks", help="list every check of every scenario")
    p.set_defaults(fn=cmd_checks)
    p = sub.add_parser("run", help="run scenarios (default: all)")
    p.add_argument("scenarios", nargs="*")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--baseline", action="store_true", help="run on the unpatched kernel")
    g.add_argument("--both", action="store_true", help="run on patched and baseline")
    p.add_argument("--no-build", action="store_true", help="use the last built kernel(s)")
    p.add_argument("--ci-only", action="store_true", help="only scenarios marked for CI")
    p.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="override a scenario parameter (repeatable), e.g. stall_s=40")
    p.set_defaults(fn=cmd_run)
    p = sub.add_parser("shell", help="interactive console in a guest (pexpect)")
    p.add_argument("--baseline", action="store_true")
    p.add_argument("--scenario", help="use this scenario's guest spec")
    p.set_defaults(fn=cmd_shell, no_build=False)
    p = sub.add_parser("bench", help="benchmarks: patched vs baseline vs peers")
    p.add_argument("--runs", type=int, default=10, help="swap onsets for the latency table")
    p.add_argument("--reps", type=int, default=5, help="workload repetitions per boot (idle cost)")
    p.add_argument("--cost-rounds", type=int, default=2,
                   help="rounds of boots P, B, B' (baseline again: A/A) for the run-time cost")
    p.add_argument("--insn-reps", type=int, default=3,
                   help="workload repetitions per instruction-counting boot")
    p.add_argument("--kill-runs", type=int, default=5, help="boots of cpuset-swap-kill")
    p.add_argument("--netswap-runs", type=int, default=10,
                   help="netswap-flood runs per kernel (variants: 20%% of it, at least 1)")
    p.add_argument("--emergpool-boots", type=int, default=3,
                   help="emergpool boots per kernel (patched, and the probe kernel)")
    p.add_argument("--only", action="append", metavar="SECTION[,SECTION]",
                   help="run only these: latency, herd, cost, insn, alloc, emergpool, cpuset, "
                        "netswap")
    p.add_argument("--no-build", action="store_true", help="use the last built kernels")
    p.set_defaults(fn=cmd_bench)
    p = sub.add_parser("judge", help="judge a saved scenario run directory again")
    p.add_argument("scenario")
    p.add_argument("rundir")
    p.add_argument("--kind", default="patched", choices=["patched", "baseline"])
    p.set_defaults(fn=cmd_judge)
    p = sub.add_parser("parse", help="parse a saved KTAP log")
    p.add_argument("log")
    p.set_defaults(fn=cmd_parse)
    p = sub.add_parser("scan", help="scan a saved console log for splats")
    p.add_argument("log")
    p.add_argument("--allow", action="append")
    p.set_defaults(fn=cmd_scan)
    p = sub.add_parser("host-check", help="check that no guest-only daemon runs or is enabled on the host")
    p.set_defaults(fn=cmd_host_check)
    args = ap.parse_args(argv)
    return guarded(args.fn, args)


def _sigterm(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def guarded(fn, args) -> int:
    """Exit codes: the command's own (0 pass, 1 fail); 2 for any infrastructure
    error or unexpected exception; 130 on Ctrl-C/SIGTERM.  Every guest this
    process started is stopped on the way out."""
    old = signal.signal(signal.SIGTERM, _sigterm)
    try:
        return fn(args)
    except HarnessError as e:
        log("ERROR", f"{e.stage}: {e}")
        return 2
    except KeyboardInterrupt:
        n = vm.kill_all()
        log("ERROR", f"interrupted; stopped {n} guest(s)")
        return 130
    except Exception as e:  # a harness bug is an infrastructure error, not a test failure
        log("ERROR", f"unexpected {type(e).__name__}: {e}\n{traceback.format_exc()}")
        return 2
    finally:
        vm.kill_all()
        signal.signal(signal.SIGTERM, old)
