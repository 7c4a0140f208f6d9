"""netswap-flood: three machines, swap over the network, a flood and a stall.

A (the kernel under test) swaps to an NBD device served by C and runs a job
whose own thread also serves B's connections; B floods A (TCP, UDP, IP
fragments).  Once A swaps steadily, C's whole machine is stopped for
``stall_s`` (SIGSTOP of its QEMU) while B keeps sending; then C returns and
A's job must finish (``../shared/seeds/networked-swap-deadlock.txt``).

The guest measures, the host judges: A's heartbeat (every 100 ms on a
virtio-serial port, stamped with host time on arrival) gives the job's
progress, swap and NBD I/O counts, free memory and the network drop
counters; the fault times are the host's own.  "Wedged" is decided on the
host: no job progress for ``wedge_s`` after C returned, or the job never
finished.  Until the kernel work for survival lands, survival and the resume
time are recorded, not asserted (XFAIL when A does not make it): the other
checks prove the scenario did what it says (A swapped over the network
before the stall, the stall stopped A's swap I/O, B's data kept arriving).
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import checks as ck
from .. import fleet, initramfs, vm
from ..checks import CheckDef, Judging
from ..kernel import Kernel
from ..results import CRASH_KINDS, Check, ScenarioResult, decide
from ..scenario import Scenario, render, scan_splats
from ..vm import GuestSpec

HB_FIELDS = ("t_ns", "phase", "progress", "svc_bytes", "svc_msgs", "pswpin", "pswpout",
             "free_kb", "avail_kb", "swapfree_kb", "nbd_rd", "nbd_wr", "nbd_inflight",
             "rx_pkts", "rx_drop", "pfmemalloc_drop", "tcp_rcvq_drop", "udp_rcvbuf_err",
             "reasm_fails", "tcp_mem", "udp_mem", "frag_bytes")
ADDR = {"A": "10.99.0.1", "B": "10.99.0.2", "C": "10.99.0.3"}
RECORDED = ("survived", "swap_resumed")


@dataclass
class Run:
    """What a run left on the host, parsed."""

    hb: list[dict] = field(default_factory=list)  # heartbeat rows; "t" = host time
    hbinfo: dict = field(default_factory=dict)
    events: list[dict] = field(default_factory=list)
    out: dict[str, list[tuple[float, str]]] = field(default_factory=dict)
    meas: dict[str, dict[str, str]] = field(default_factory=dict)

    def event(self, prefix: str) -> float | None:
        for e in self.events:
            if e["event"].startswith(prefix):
                return float(e["t"])
        return None

    def stall(self) -> tuple[float | None, float | None]:
        """When C went away and came back (a freeze, or a fault on its link)."""
        tf, tt = self.event("stall start"), self.event("stall end")
        if tf is None:  # runs recorded before link faults existed
            tf, tt = self.event("freeze C"), self.event("thaw C")
        return tf, tt

    def at(self, t: float) -> dict | None:
        """The last heartbeat at or before host time t."""
        last = None
        for r in self.hb:
            if r["t"] > t:
                break
            last = r
        return last


def nbd_pages(first: dict, row: dict) -> int:
    """Pages written over NBD between two heartbeats (mkswap's sectors, before
    the first heartbeat, do not count); -1 if A has no NBD counters."""
    if row["nbd_wr"] < 0:
        return -1
    return (row["nbd_wr"] - max(first["nbd_wr"], 0)) // 8


def _stamped(text: str) -> list[tuple[float, str]]:
    out = []
    for ln in text.splitlines():
        t, _, rest = ln.partition("\t")
        try:
            out.append((float(t), rest))
        except ValueError:
            continue
    return out


def _hb_row(line: str) -> dict | None:
    f = line.split()
    if len(f) != len(HB_FIELDS) + 1 or f[0] != "hb":
        return None
    try:
        return dict(zip(HB_FIELDS, (int(x) for x in f[1:]), strict=True))
    except ValueError:
        return None


def load(rundir: Path) -> Run:
    r = Run()
    hb = rundir / "A" / "heartbeat.txt"
    if hb.is_file():
        for t, ln in _stamped(hb.read_text(errors="replace")):
            f = ln.split()
            if f and f[0] == "hbinfo":
                r.hbinfo = dict(x.split("=", 1) for x in f[1:] if "=" in x)
            elif (row := _hb_row(ln)) is not None:
                row["t"] = t
                r.hb.append(row)
    ev = rundir / "events.json"
    if ev.is_file():
        r.events = json.loads(ev.read_text())
    for m in ("A", "B", "C"):
        f = rundir / m / "out.txt"
        r.out[m] = _stamped(f.read_text(errors="replace")) if f.is_file() else []
    r.meas = ck.parse_measurements("\n".join("# " + ln for _, ln in r.out.get("A", [])
                                             if ln.startswith("kexp-m ")))
    return r


def _run_of(j: Judging) -> Run:
    return load(j.rundir)


# ----------------------------------------------------------------- judges


def j_machines(j: Judging) -> ck.Verdict:
    r = _run_of(j)
    ready = {m: any(ln.startswith("kexp-ready") for _, ln in r.out.get(m, [])) for m in "ABC"}
    swap = r.meas.get("setup", {}).get("swap")
    missing = [m for m, ok in ready.items() if not ok]
    return ck.verdict(not missing and swap == "nbd0" and len(r.hb) >= 2,
                      f"ready: {', '.join(m for m in 'ABC' if ready[m]) or 'none'}"
                      + (f"; not ready: {', '.join(missing)}" if missing else "")
                      + f"; A's swap: {swap}; heartbeats: {len(r.hb)}",
                      "A, B and C ready; A swaps on nbd0 (served by C); heartbeat received",
                      heartbeats=len(r.hb), swap=swap or "")


def j_swapping(j: Judging) -> ck.Verdict:
    """A's swap went over NBD to C before the stall: swap_before_pages
    completed, or A got stuck first with its swap-outs sent to NBD and
    requests in flight (the wedge then came before the stall; ``survived``
    reports it)."""
    r = _run_of(j)
    tf = r.stall()[0]
    if tf is None or not r.hb:
        return ck.fail("C was never frozen")
    a, b = r.hb[0], r.at(tf)
    if b is None:
        return ck.fail("no heartbeat from A before the stall")
    out = b["pswpout"] - a["pswpout"]
    nbdw = nbd_pages(a, b)
    need = int(j.params["swap_before_pages"])
    stuck = r.event("A made no progress") is not None
    inflight = b["nbd_inflight"]
    return ck.verdict(nbdw >= need or (stuck and out > 0 and (nbdw > 0 or inflight > 0)),
                      f"before the stall A wrote {out} pages to swap, {nbdw} completed over NBD, "
                      f"{inflight} NBD requests in flight"
                      + ("; A's job was already stuck" if stuck else ""),
                      f">= {need} pages completed over NBD before C stops, or A stuck with "
                      "swap-outs sent to NBD",
                      pswpout=out, nbd_pages=nbdw, nbd_inflight=inflight, stuck_before=stuck)


def _flood_counts(ln: str) -> int:
    """B's cumulative sends in one "flood t tcp_bytes udp frag holes errs" line."""
    f = ln.split()
    try:
        return int(f[2]) // 1200 + int(f[3]) + int(f[4]) + int(f[5])
    except (IndexError, ValueError):
        return 0


def j_stall(j: Judging) -> ck.Verdict:
    """The stall happened as scheduled, seen from the other machines: a
    frozen C printed nothing while it was stopped (it prints every second)
    and before and after; B's send counters rose meanwhile (unless the run
    has no flood); A kept reporting and completed no NBD I/O while C was
    frozen or cut off (a slow link may complete some).  What A received
    meanwhile is reported."""
    r = _run_of(j)
    tf, tt = r.stall()
    if tf is None or tt is None:
        return ck.fail("no stall recorded")
    kind = j.params.get("stall_kind", "freeze")
    dur, want = tt - tf, float(j.params["stall_s"])
    problems = []
    c_times = [t for t, ln in r.out.get("C", []) if ln.startswith("c-io")]
    if kind == "freeze":
        inside = [t for t in c_times if tf + 1.5 < t < tt - 0.5]
        if inside or not any(t < tf for t in c_times) or not any(t > tt for t in c_times):
            problems.append(f"C was not silent only during its freeze ({len(inside)} lines inside)")
    flood = [_flood_counts(ln) for t, ln in r.out.get("B", []) if tf <= t <= tt
             and ln.startswith("flood ")]
    sent = flood[-1] - flood[0] if len(flood) >= 2 else 0
    if j.params.get("flood", "") != "none" and sent <= 0:
        problems.append("B sent nothing during the stall")
    rows = [x for x in r.hb if tf + 1.0 <= x["t"] <= tt]
    gap = max((b["t"] - a["t"] for a, b in zip(rows, rows[1:], strict=False)), default=dur)
    if len(rows) < 2 or gap > 5.0:
        problems.append(f"A's heartbeat stopped during the stall (largest gap {gap:.1f}s)")
    io = (rows[-1]["nbd_rd"] + rows[-1]["nbd_wr"]) - (rows[0]["nbd_rd"] + rows[0]["nbd_wr"]) \
        if len(rows) >= 2 else 0
    if io and kind != "slow":
        problems.append(f"A completed {io} NBD sectors while C was away")
    if abs(dur - want) > 2.0:
        problems.append(f"stall lasted {dur:.1f}s")
    rx = rows[-1]["rx_pkts"] - rows[0]["rx_pkts"] if len(rows) >= 2 else 0
    return ck.verdict(not problems,
                      f"{kind} of C for {dur:.1f}s; B sent {sent} datagrams/64K-writes meanwhile; "
                      f"A completed {io} NBD sectors and received {rx} packets meanwhile"
                      + (f"; {'; '.join(problems)}" if problems else ""),
                      f"stall {want:.0f}±2 s, C silent if frozen, B sending, A reporting, "
                      "no NBD completion (but for a slow link)",
                      stall_s=round(dur, 1), nbd_io=io, rx_pkts=rx, b_sent=sent)


def _progress_gap(r: Run, since: float, end: float) -> tuple[float, bool]:
    """Longest stretch without job progress after ``since`` (to ``end`` if the
    job never finished), and whether it finished."""
    rows = [x for x in r.hb if x["t"] >= since]
    done = any(x["phase"] == 3 for x in r.hb) or any(
        "netjob: done" in ln for _, ln in r.out.get("A", []))
    last_t, last_p, gap = since, (r.at(since) or {"progress": -1})["progress"], 0.0
    for x in rows:
        if x["progress"] != last_p:
            gap = max(gap, x["t"] - last_t)
            last_t, last_p = x["t"], x["progress"]
        if x["phase"] == 3:
            break
    if not done:
        gap = max(gap, end - last_t)
    return gap, done


def last_progress(r: Run) -> float | None:
    """Host time of the last heartbeat whose progress differs from the one before."""
    t, prev = None, None
    for x in r.hb:
        if x["progress"] != prev:
            t, prev = x["t"], x["progress"]
    return t


def last_io(r: Run) -> float | None:
    """Host time of the last heartbeat whose NBD sector count moved."""
    t, prev = None, None
    for x in r.hb:
        io = x["nbd_rd"] + x["nbd_wr"]
        if io != prev:
            t, prev = x["t"], io
    return t


def flood_open(r: Run) -> float | None:
    """When B's traffic was let through to A (None: from boot)."""
    for e in r.events:
        if e["event"].startswith("link ") and " B drop=0" in e["event"]:
            return float(e["t"])
    return None


def _recorded(j: Judging, good: bool, detail: str, bound: str, **values) -> ck.Verdict:
    if good:
        return ck.ok(detail, bound, **values)
    if j.params.get("assert_survival"):
        return ck.fail(detail, bound, **values)
    return ck.Verdict("XFAIL", f"{detail} (recorded, not asserted: no survival work in this "
                               "kernel yet)", values, bound)


def j_survived(j: Judging) -> ck.Verdict:
    r = _run_of(j)
    tt = r.stall()[1]
    if tt is None:
        return ck.fail("C never returned: nothing to judge")
    end = r.event("watch end") or (r.hb[-1]["t"] if r.hb else tt)
    gap, done = _progress_gap(r, tt, end)
    wedge = float(j.params["wedge_s"])
    wedged = gap >= wedge or not done
    rc = r.meas.get("job", {}).get("rc")
    stop = last_progress(r)
    when = ""
    if wedged and stop is not None:
        tf = r.stall()[0]
        rel = "before C stopped" if tf is not None and stop < tf else "after C stopped"
        when = f"; last progress at t={stop:.1f}s ({rel})"
        io, fo = last_io(r), flood_open(r)
        if io is not None:
            when += f", last NBD completion at t={io:.1f}s" + (
                f", {io - fo:.1f}s after B's flood reached A" if fo is not None else "")
    return _recorded(j, done and not wedged and rc == "0",
                     f"job {'finished' if done else 'did not finish'} (rc={rc}); longest "
                     f"stretch without progress after C returned: {gap:.1f}s"
                     + ("; WEDGED" if wedged else "") + when,
                     f"no {wedge:.0f}s without progress after C returns; job finishes, rc 0",
                     wedged=wedged, done=done, gap_s=round(gap, 1))


def resume_time(r: Run) -> float | None:
    tt = r.stall()[1]
    if tt is None:
        return None
    base = r.at(tt)
    if base is None:
        return None
    io0 = base["nbd_rd"] + base["nbd_wr"]
    for x in r.hb:
        if x["t"] > tt and x["nbd_rd"] + x["nbd_wr"] > io0:
            return x["t"] - tt
    return None


def j_resumed(j: Judging) -> ck.Verdict:
    r = _run_of(j)
    dt = resume_time(r)
    bound = float(j.params["resume_s"])
    return _recorded(j, dt is not None and dt <= bound,
                     "swap I/O never resumed after C returned" if dt is None else
                     f"swap I/O resumed {dt:.2f}s after C returned",
                     f"<= {bound:.1f}s (host time, heartbeat every 0.1 s)",
                     resume_s=None if dt is None else round(dt, 2))


CHECKS = (
    CheckDef("machines_up", "A, B and C booted; A swaps on nbd0 served by C; A's heartbeat "
             "reaches the host", j_machines),
    CheckDef("swap_over_nbd", "A's swap-outs went over NBD to C before the stall "
             "(pswpout, NBD sectors written and requests in flight, from A's heartbeat)",
             j_swapping),
    CheckDef("stall_effective", "C stopped for stall_s; A's completed NBD I/O stood still "
             "meanwhile; B kept flooding A (B's own counters; what A received is reported)",
             j_stall),
    CheckDef("survived", "A's job made progress within wedge_s after C returned and finished "
             "(recorded, not asserted, until the survival work lands)", j_survived,
             required=False),
    CheckDef("swap_resumed", "time from C's return to A's first NBD I/O completion "
             "(recorded, not asserted, until the survival work lands)", j_resumed,
             required=False),
)


# ----------------------------------------------------------------- running


def _script(role: str, params: dict, c_ip: str, netjob_host: str = "/nonexistent") -> str:
    return render("netswap-flood.sh.j2", {"role": role, "p": params, "a_ip": ADDR["A"],
                                          "c_ip": c_ip, "netjob_host": netjob_host})


def links(params: dict) -> list[fleet.LinkSpec]:
    if params["topology"] == "shared":
        return [fleet.LinkSpec("lan", {m: f"{ADDR[m]}/24" for m in ("A", "B", "C")})]
    return [fleet.LinkSpec("ab", {"A": f"{ADDR['A']}/24", "B": f"{ADDR['B']}/24"}),
            fleet.LinkSpec("ac", {"A": "10.99.1.1/24", "C": "10.99.1.3/24"})]


class Stillness:
    """How long a value has stood still, in host time."""

    def __init__(self) -> None:
        self.value: object = None
        self.t = time.monotonic()

    def since(self, value: object) -> float:
        if value != self.value:
            self.value, self.t = value, time.monotonic()
        return time.monotonic() - self.t


def run_fleet(scn: Scenario, kernel: Kernel, rundir: Path, accel: str,
              res: ScenarioResult) -> None:
    p = scn.params
    disk = rundir / "c-swap.img"
    subprocess.run(["truncate", "-s", f"{p['swap_mb']}M", str(disk)], check=True)
    c_ip = ADDR["C"] if p["topology"] == "shared" else "10.99.1.3"
    machines = [
        # a frozen C sees its clock jump by stall_s: no soft-lockup or RCU
        # stall reports for a stop the harness made
        fleet.MachineSpec("C", memory=p["c_mem"], script=_script("C", p, c_ip), disks=[str(disk)],
                          append=["nowatchdog", "rcupdate.rcu_cpu_stall_suppress=1"]),
        # loglevel 7 on A: hung-task reports with their stacks (the evidence)
        fleet.MachineSpec("A", memory=p["a_mem"], cpus=p["a_cpus"], heartbeat=True,
                          script=_script("A", p, c_ip, str(initramfs.static_tool("netjob"))),
                          append=["loglevel=7"],
                          virtfs={"kexphost": "/"} if p["a_root"] == "9p" else {}),
        fleet.MachineSpec("B", memory=p["b_mem"], script=_script("B", p, c_ip)),
    ]
    f = fleet.Fleet(rundir, kernel.image, machines, links(p), accel, mbit=p["link_mbit"])
    A = f.machines["A"]
    try:
        f.start_switch()
        # B's frames are dropped at the switch until A swaps steadily: the
        # flood starts flood_lead_s before C stops (or from boot: flood_lead_s < 0)
        b_link = "lan" if p["topology"] == "shared" else "ab"
        if p["flood_lead_s"] >= 0:
            f.link(b_link, "B", drop=1)
        f.launch(order=["C", "A", "B"])
        for m in ("C", "A", "B"):
            f.machines[m].wait_for("kexp-ready", p["boot_timeout"])
        f.event("all ready")
        # steady swapping: swap_before_pages written to C (NBD completions);
        # the fault sequence also goes ahead if A stops making progress first
        end = time.monotonic() + p["swap_timeout"]
        still, what = Stillness(), "no steady swapping in time"
        while time.monotonic() < end and A.alive():
            hb = [_hb_row(ln) for _, ln in A.lines("hb")]
            hb = [x for x in hb if x]
            if hb and nbd_pages(hb[0], hb[-1]) >= p["swap_before_pages"]:
                what = "steady swapping"
                break
            if still.since(hb[-1]["progress"] if hb else None) >= p["stuck_s"]:
                what = f"A made no progress for {p['stuck_s']}s before the stall"
                break
            time.sleep(0.2)
        f.event(what)
        if p["flood_lead_s"] >= 0:
            f.link(b_link, "B", drop=0)
            time.sleep(p["flood_lead_s"])
        # the stall: C's whole machine stops (freeze), or its link drops
        # every frame (drop), or turns slow and lossy (slow), at the switch
        c_link = "lan" if p["topology"] == "shared" else "ac"
        f.event("stall start", kind=p["stall_kind"])
        if p["stall_kind"] == "freeze":
            f.freeze("C")
        elif p["stall_kind"] == "drop":
            f.link(c_link, "C", drop=1)
        else:
            f.link(c_link, "C", delay_ms=p["slow_delay_ms"], loss=p["slow_loss"])
        time.sleep(p["stall_s"])
        if p["stall_kind"] == "freeze":
            f.thaw("C")
        elif p["stall_kind"] == "drop":
            f.link(c_link, "C", drop=0)
        else:
            f.link(c_link, "C", delay_ms=0, loss=0)
        f.event("stall end")
        # watch: the job finishes, or makes no progress for wedge_s
        still, why = Stillness(), "timeout"
        end = time.monotonic() + p["watch_timeout"]
        while time.monotonic() < end:
            rows = [x for x in (_hb_row(ln) for _, ln in A.lines("hb")[-5:]) if x]
            cur = rows[-1] if rows else None
            if any("netjob: done" in ln for _, ln in A.lines()) or (cur and cur["phase"] == 3):
                why = "job done"
                break
            if not A.alive():
                why = "A's QEMU exited"
                break
            if still.since(cur["progress"] if cur else None) >= p["wedge_s"]:
                why = f"no progress for {p['wedge_s']}s"
                break
            time.sleep(0.2)
        f.event("watch end", why=why)
        if why == "job done":
            try:
                A.wait_for("kexp-exit", 120)
            except Exception:  # judged from what arrived
                pass
    finally:
        f.stop(order=["B", "A", "C"])
        disk.unlink(missing_ok=True)


def judge_dir(scn: Scenario, kind: str, rundir: Path, res: ScenarioResult,
              info: dict | None = None) -> None:
    """Judge a netswap run directory (live or recorded)."""
    text = {}
    for m in ("A", "B", "C"):
        f = rundir / m / "console.log"
        text[m] = f.read_text(errors="replace") if f.is_file() else ""
    splats = []
    for m, t in text.items():
        for s in scan_splats(scn, t):
            splats.append({**s, "machine": m})
    # hung tasks on A are the evidence of a wedge while survival is not
    # asserted: reported, not a crash; a panic or oops always is
    hung = [s for s in splats if s["kind"] == "hung_task" and s["machine"] == "A"]
    res.splats = [s for s in splats if not (s in hung and not scn.params.get("assert_survival"))]
    crashes = [s for s in res.splats if s["kind"] in CRASH_KINDS]
    if any(vm.PANIC_RE.search(t) for t in text.values()) and not crashes:
        res.crash = "kernel panic"
    elif crashes:
        res.crash = f"{crashes[0]['machine']}: {crashes[0]['kind']}: {crashes[0]['line']}"
    r = load(rundir)
    res.metrics["machines"] = machines(r, rundir, splats)
    meas = {**r.meas}
    out = []
    for d in scn.checks:
        jd = Judging(meas.get(d.name, {}), meas, scn.params, rundir, kind, info or {})
        v = d.judge(jd)
        if v.status == "SKIP" and res.strict and d.required:
            v = ck.fail(f"strict mode: required check skipped: {v.detail}", **v.values)
        out.append(Check(d.name, v.status, v.detail, [], v.values, v.bound, d.doc))
    res.checks = out
    evaluate(res, r, hung)
    res.outcome = decide(res.checks, res.splats, crash=res.crash)


def machines(r: Run, rundir: Path, splats: list[dict]) -> dict[str, dict]:
    """Per machine: when it was launched, ready and stopped (host time), how
    its QEMU ended, its splats, its files."""
    out = {}
    for m in ("A", "B", "C"):
        ev = {e["event"].split()[0]: e for e in r.events if e["event"].endswith(f" {m}")}
        ready = next((t for t, ln in r.out.get(m, []) if ln.startswith("kexp-ready")), None)
        out[m] = {"launched_s": ev.get("launch", {}).get("t"), "ready_s": ready,
                  "stopped_s": ev.get("stopped", {}).get("t"),
                  "qemu_rc": ev.get("stopped", {}).get("rc"),
                  "splats": sum(1 for s in splats if s.get("machine") == m),
                  "output_lines": len(r.out.get(m, [])),
                  "console": f"{m}/console.log"}
    return out


def evaluate(res: ScenarioResult, r: Run, hung: list[dict]) -> None:
    tf, tt = r.stall()
    m = res.metrics
    m["hung_task_reports_on_A"] = len(hung)
    if r.hb:
        last = r.hb[-1]
        first = r.hb[0]
        for k in ("pfmemalloc_drop", "rx_drop", "tcp_rcvq_drop", "udp_rcvbuf_err", "reasm_fails"):
            if last[k] >= 0:
                m[f"A {k}"] = last[k] - max(first[k], 0)
        m["A min free (MiB)"] = round(min(x["free_kb"] for x in r.hb) / 1024, 1)
        m["A min watermark (MiB)"] = round(int(r.hbinfo.get("min_kb", 0)) / 1024, 1)
        m["A pages swapped out"] = last["pswpout"] - first["pswpout"]
        m["A pages swapped in"] = last["pswpin"] - first["pswpin"]
        m["A peak TCP mem (pages)"] = max(x["tcp_mem"] for x in r.hb)
        m["A peak UDP mem (pages)"] = max(x["udp_mem"] for x in r.hb)
        m["A peak frag mem (bytes)"] = max(x["frag_bytes"] for x in r.hb)
    dt = resume_time(r)
    m["swap I/O resumed after C returned (s)"] = None if dt is None else round(dt, 2)
    io, fo = last_io(r), flood_open(r)
    if io is not None and fo is not None:
        m["last NBD completion after B's flood reached A (s)"] = round(io - fo, 1)
    surv = res.check("survived")
    if surv is not None:
        stop = last_progress(r)
        m["wedged"] = "no" if surv.status == "PASS" else (
            "before the stall" if stop is not None and tf is not None and stop < tf
            else "after the stall")
    if len(r.hb) < 2:
        return
    t0 = r.hb[0]["t"]

    def pts(f) -> list:
        return [[round(x["t"] - t0, 2), f(x)] for x in r.hb]

    events = [[round(e["t"] - t0, 2), e["event"]] for e in r.events
              if e["event"].split()[0] in ("freeze", "thaw", "watch", "steady", "stall", "link")]
    note = "freeze/thaw: C's QEMU stopped and continued; A's heartbeat every 0.1 s"
    plots = m.setdefault("plots", {})
    plots["A's memory (host time)"] = {
        "type": "timeline", "unit": "MiB", "x_unit": "s", "zero": True, "events": events,
        "series": {
            "free": pts(lambda x: round(x["free_kb"] / 1024, 1)),
            "min watermark": pts(lambda x: round(int(r.hbinfo.get("min_kb", 0)) / 1024, 1)),
            "TCP+UDP socket memory": pts(lambda x: round((max(x["tcp_mem"], 0)
                                                          + max(x["udp_mem"], 0)) / 256, 1)),
            "IP fragment queues": pts(lambda x: round(max(x["frag_bytes"], 0) / 2**20, 1)),
        }, "note": note}
    plots["A's job and swap I/O (host time)"] = {
        "type": "timeline", "unit": "MiB", "x_unit": "s", "zero": True, "events": events,
        "series": {
            "job progress (MiB touched)": pts(lambda x: round(x["progress"] / 256, 1)),
            "swap written": pts(lambda x: round((x["pswpout"] - r.hb[0]["pswpout"]) / 256, 1)),
            "swap read": pts(lambda x: round((x["pswpin"] - r.hb[0]["pswpin"]) / 256, 1)),
        }, "note": note}
    if tf is not None and tt is not None:
        res.metrics["stall (s)"] = round(tt - tf, 1)


PARAMS = {
    # p2p: A-B and A-C links (a storage network apart from the clients');
    # shared: A, B, C on one segment (one NIC on A)
    "topology": "shared", "link_mbit": 40,
    "flood_lead_s": 5,  # B's flood reaches A this long before C stops (< 0: from boot)
    "a_mem": "256M", "a_cpus": 1, "b_mem": "128M", "c_mem": "160M",
    "work_mb": 240, "passes": 2, "swap_mb": 512,
    "fill_ms_per_mb": 0,
    # 9p: A runs its job from the host's root over 9p (as vng guests do);
    # initramfs: everything A runs is in RAM
    "a_root": "initramfs",  # > 0: the job grows by 1 MiB per this many ms (first pass)
    "flood": "tcp,udp,frag", "conns": 32, "tcp_port": 7000, "udp_port": 7001,
    "min_free_kbytes": 0,  # 0: the kernel's default
    "nbd_timeout": 120,  # longer than the stall (nbd-client -t)
    "hung_task_s": 30,
    "swap_before_pages": 4096, "stuck_s": 20, "stall_s": 20,
    # freeze: C's QEMU stopped; drop: C's link drops every frame; slow: C's
    # link delays every frame slow_delay_ms and loses slow_loss percent
    "stall_kind": "freeze", "slow_delay_ms": 500, "slow_loss": 20, "wedge_s": 60, "resume_s": 1.0,
    "boot_timeout": 240, "swap_timeout": 400, "watch_timeout": 600,
    "assert_survival": False,
}

SCENARIO = Scenario(
    name="netswap-flood",
    description="A swaps over NBD to C and serves B; C stops for 20 s while B floods A; "
                "does A's job finish (three machines, host-judged heartbeat)",
    guest=GuestSpec(name="netswap", memory="256M", cpus=1, timeout=1800),
    params=PARAMS, checks=CHECKS, ci=True, runner=run_fleet, judge_dir=judge_dir,
    recorded=RECORDED,
)
