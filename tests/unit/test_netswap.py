"""netswap-flood judged on synthetic run directories: a good run passes,
and each doctored one fails the check it should (every check can fail)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from harness import fleet, initramfs
from harness.results import ScenarioResult
from harness.scenarios import netswap


def hb_line(t, phase, prog, pswpout, nbd, rx, free_kb=8000, pswpin=0, inflight=0):
    f = [int(t * 1e9), phase, prog, 0, 0, pswpin, pswpout, free_kb, free_kb, 500000,
         nbd, nbd, inflight, rx, 0, 0, 0, 0, 0, 100, 50, 0]
    return f"{t:.3f}\thb " + " ".join(str(x) for x in f)


def make_run(d: Path, wedge_at: float | None = None, stall_io: bool = False,
             flood: bool = True, freeze: bool = True, console_a: str = "",
             resume_delay: float = 0.3) -> Path:
    """A run: freeze at 30 s, thaw at 50 s, job done at 80 s (unless wedged)."""
    for m in "ABC":
        (d / m).mkdir(parents=True, exist_ok=True)
        (d / m / "console.log").write_text("[    1.0] kexp: console capture check\n")
    (d / "A" / "console.log").write_text("[    1.0] kexp: console capture check\n" + console_a)
    rows, prog, out, nbd, rx = ["0.000\thbinfo min_kb=4000 low_kb=5000 high_kb=6000"], 0, 0, 0, 0
    t, phase = 10.0, 1
    while t <= 85.0:
        frozen = 30.0 <= t < 50.0 + resume_delay
        wedged = wedge_at is not None and t >= wedge_at
        if not frozen and not wedged:
            prog += 500
            out += 300
            nbd += 2400
        elif frozen and stall_io:
            nbd += 8
        rx += 100
        if t >= 80.0 and not wedged:
            phase = 3
        rows.append(hb_line(t, phase, prog, out, nbd, rx))
        if phase == 3:
            break
        t = round(t + 0.1, 3)
    (d / "A" / "heartbeat.txt").write_text("\n".join(rows) + "\n")
    a_out = ["5.0\tkexp-m setup swap=nbd0", "5.0\tkexp-m setup swap_kb=786428", "6.0\tkexp-ready A"]
    if wedge_at is None:
        a_out += ["80.1\tnetjob: done 1 pages", "80.2\tkexp-m job rc=0", "81.0\tkexp-exit 0"]
    (d / "A" / "out.txt").write_text("\n".join(a_out) + "\n")
    (d / "B" / "out.txt").write_text("7.0\tkexp-ready B\n" + "".join(
        f"{t}.5\tflood {t} {t * 12000 if flood else 0} {t * 10 if flood else 0} 0 0 0\n"
        for t in range(8, 85)))
    (d / "C" / "out.txt").write_text("4.0\tkexp-ready C 1572864 sectors exported\n" + "".join(
        f"{t}.2\tc-io 1 2 3\n" for t in range(5, 85) if not (freeze and 30 <= t < 50)))
    ev = [{"t": 9.0, "event": "all ready"}, {"t": 29.9, "event": "steady swapping"}]
    if freeze:
        ev += [{"t": 30.0, "event": "freeze C"}, {"t": 50.0, "event": "thaw C"}]
    ev += [{"t": 85.0 if wedge_at else 80.5, "event": "watch end"}]
    (d / "events.json").write_text(json.dumps(ev))
    return d


def judge(d: Path, **params) -> ScenarioResult:
    scn = dataclasses.replace(netswap.SCENARIO, params={**netswap.SCENARIO.params, **params})
    res = ScenarioResult("netswap-flood", "baseline", "ERROR", rundir=str(d))
    netswap.judge_dir(scn, "baseline", d, res)
    return res


def st(res: ScenarioResult) -> dict[str, str]:
    return {c.name: c.status for c in res.checks}


def test_good_run_passes(tmp_path):
    res = judge(make_run(tmp_path))
    assert res.outcome == "PASS", [(c.name, c.detail) for c in res.checks]
    assert res.metrics["swap I/O resumed after C returned (s)"] == 0.3
    assert "A's memory (host time)" in res.metrics["plots"]
    assert res.metrics["machines"]["B"]["ready_s"] == 7.0
    from harness import results
    rec = results.RunRecord("t", {}, [res], "test")
    results.write_junit(rec, tmp_path / "j.xml")
    xml = (tmp_path / "j.xml").read_text()
    assert 'name="machine:A"' in xml and 'name="machine:C"' in xml


def test_wedge_is_recorded_not_asserted(tmp_path):
    res = judge(make_run(tmp_path, wedge_at=52.0))
    assert st(res)["survived"] == "XFAIL"
    assert st(res)["machines_up"] == st(res)["stall_effective"] == "PASS"
    assert res.outcome == "XFAIL"
    assert all(c.name in netswap.RECORDED for c in res.checks if c.status == "XFAIL")


def test_wedge_fails_once_asserted(tmp_path):
    res = judge(make_run(tmp_path, wedge_at=52.0), assert_survival=True)
    assert st(res)["survived"] == "FAIL" and res.outcome == "FAIL"


def test_slow_resume_is_recorded(tmp_path):
    res = judge(make_run(tmp_path, resume_delay=3.0))
    assert st(res)["swap_resumed"] == "XFAIL"
    assert judge(make_run(tmp_path, resume_delay=3.0), assert_survival=True).outcome == "FAIL"


def test_stall_that_does_not_stop_swap_io_fails(tmp_path):
    assert st(judge(make_run(tmp_path, stall_io=True)))["stall_effective"] == "FAIL"


def test_no_flood_during_stall_fails(tmp_path):
    assert st(judge(make_run(tmp_path, flood=False)))["stall_effective"] == "FAIL"
    # a run without a flood does not need one
    assert st(judge(make_run(tmp_path, flood=False), flood="none"))["stall_effective"] == "PASS"


def test_c_not_silent_during_its_freeze_fails(tmp_path):
    d = make_run(tmp_path)
    with open(d / "C" / "out.txt", "a") as f:
        f.write("40.0\tc-io 1 2 3\n")
    assert st(judge(d))["stall_effective"] == "FAIL"


def test_heartbeat_gap_during_stall_fails(tmp_path):
    d = make_run(tmp_path)
    rows = (d / "A" / "heartbeat.txt").read_text().splitlines()
    keep = [r for r in rows if not (r[0].isdigit() and 33.0 < float(r.split()[0]) < 45.0)]
    (d / "A" / "heartbeat.txt").write_text("\n".join(keep) + "\n")
    assert st(judge(d))["stall_effective"] == "FAIL"


def test_no_freeze_fails(tmp_path):
    res = judge(make_run(tmp_path, freeze=False))
    assert st(res)["swap_over_nbd"] == "FAIL" and st(res)["stall_effective"] == "FAIL"


def test_no_swap_fails_machines_up(tmp_path):
    d = make_run(tmp_path)
    (d / "A" / "out.txt").write_text("5.0\tkexp-m setup swap=none\n6.0\tkexp-ready A (no swap)\n")
    assert st(judge(d))["machines_up"] == "FAIL"


HUNG = ("[  120.0] INFO: task netjob:123 blocked for more than 30 seconds.\n"
        "[  120.0]       Not tainted 6.12.107 #1\n")


def test_hung_task_on_a_is_evidence_until_asserted(tmp_path):
    res = judge(make_run(tmp_path, wedge_at=52.0, console_a=HUNG))
    assert res.outcome == "XFAIL" and res.metrics["hung_task_reports_on_A"] == 1
    res = judge(make_run(tmp_path, wedge_at=52.0, console_a=HUNG), assert_survival=True)
    assert res.outcome == "CRASH"


def test_panic_on_any_machine_is_a_crash(tmp_path):
    d = make_run(tmp_path)
    (d / "C" / "console.log").write_text("[  9.0] Kernel panic - not syncing: boom\n")
    assert judge(d).outcome == "CRASH"


def test_nics_and_argv(tmp_path):
    f = fleet.Fleet(tmp_path, "/bz", [fleet.MachineSpec("A", heartbeat=True),
                                      fleet.MachineSpec("B"), fleet.MachineSpec("C")],
                    netswap.links({**netswap.PARAMS, "topology": "shared"}))
    f.sockdir = "/tmp/x"
    nics = f.nics("A")
    assert nics == [("lan", "52:54:00:99:00:01", "10.99.0.1/24")]
    argv = f.machines["A"].argv(Path("/i"), nics)
    joined = " ".join(argv)
    assert "dgram,id=nlan,local.type=unix,local.path=/tmp/x/lan.A.vm" in joined
    assert "remote.path=/tmp/x/lan.A.sw" in joined and "name=kexp.hb" in joined
    # nothing in the machines' network may reach the host's IP stack
    assert "user" not in [a.split(",")[0] for a in argv] and "tap" not in joined
    p2p = netswap.links({**netswap.PARAMS, "topology": "p2p"})
    assert [ln.name for ln in p2p] == ["ab", "ac"]


def test_cpio_newc_layout():
    c = initramfs.Cpio()
    c.file("/etc/kexp/run.sh", b"echo hi\n", 0o755)
    data = c.close()
    assert data.startswith(b"070701") and len(data) % 4 == 0
    assert b"etc/kexp/run.sh\0" in data and b"TRAILER!!!" in data


def _frame(dst: bytes, src: bytes, n: int = 100) -> bytes:
    return dst + src + b"\x08\x00" + bytes(n)


def _switch(tmp_path, spec: dict, members: dict[str, list[str]]):
    """The real switch process and bound machine-side sockets."""
    import socket
    import subprocess
    import sys
    import time

    sd = tmp_path / "s"
    sd.mkdir()
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    socks = {}
    for link, ms in members.items():
        for m in ms:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            s.bind(str(sd / f"{link}.{m}.vm"))
            s.settimeout(2)
            socks[m] = s
    p = subprocess.Popen([sys.executable, "-m", "harness.netswitch", str(sd),
                          str(tmp_path / "spec.json"), str(tmp_path / "stats.json")],
                         cwd=str(Path(__file__).resolve().parents[2]))
    for _ in range(100):
        if (sd / "ctl").exists():
            break
        time.sleep(0.05)
    return sd, socks, p


def _silent(sock, wait: float = 0.3) -> bool:
    """True if nothing arrives on ``sock`` within ``wait`` seconds."""
    sock.settimeout(wait)
    try:
        sock.recv(2000)
        return False
    except TimeoutError:
        return True


def test_switch_forwards_learns_and_faults(tmp_path):
    """The real switch process: frames between two machine sockets, MAC
    learning on a shared segment, a dropped member, stats written."""
    import socket
    import time

    sd, socks, p = _switch(tmp_path, {"links": {"lan": ["A", "B", "C"]}}, {"lan": ["A", "B", "C"]})
    try:
        mac = {m: bytes([2, 0, 0, 0, 0, i + 1]) for i, m in enumerate("ABC")}
        # unknown destination: flooded to B and C
        socks["A"].sendto(_frame(mac["B"], mac["A"]), str(sd / "lan.A.sw"))
        assert socks["B"].recv(2000)[6:12] == mac["A"]
        assert socks["C"].recv(2000)[6:12] == mac["A"]
        # B answers A: A's MAC was learned, so C sees nothing
        socks["B"].sendto(_frame(mac["A"], mac["B"]), str(sd / "lan.B.sw"))
        assert socks["A"].recv(2000)[6:12] == mac["B"]
        assert _silent(socks["C"]), "a learned unicast frame reached a third machine"
        # a dropped member: nothing to or from it passes
        c = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        c.sendto(b"set lan B drop=1", str(sd / "ctl"))
        time.sleep(0.2)
        socks["A"].sendto(_frame(mac["B"], mac["A"]), str(sd / "lan.A.sw"))
        assert _silent(socks["B"]), "a frame passed a dropped link"
    finally:
        p.terminate()
        p.wait(timeout=5)
    st = json.loads((tmp_path / "stats.json").read_text())
    assert st["lan.B"]["drop"] is True and st["lan.B"]["dropped_fault"] >= 1
    assert st["lan.A"]["rx_frames"] == 2


def test_switch_port_speed(tmp_path):
    """A port of 1 Mbit/s delivers about 125 kB/s and drops what its queue
    cannot hold."""
    import socket
    import time

    sd, socks, p = _switch(tmp_path, {"links": {"ab": ["A", "B"]}, "mbit": 1}, {"ab": ["A", "B"]})
    a, b = socks["A"], socks["B"]
    b.settimeout(0.5)
    b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    try:
        f = _frame(b"\x02\0\0\0\0\x02", b"\x02\0\0\0\0\x01", 1000)
        for _ in range(1000):  # 1 MB at once
            a.sendto(f, str(sd / "ab.A.sw"))
        t0, got = time.monotonic(), 0
        while time.monotonic() - t0 < 1.0:
            try:
                got += len(b.recv(2000))
            except TimeoutError:
                break
        dt = time.monotonic() - t0
    finally:
        p.terminate()
        p.wait(timeout=5)
    rate = got / dt
    assert 60e3 < rate < 250e3, rate
    st = json.loads((tmp_path / "stats.json").read_text())
    assert st["ab.B"]["dropped_queue"] > 0


def stuck_first(d: Path, inflight: int, pswpout: int) -> Path:
    """A stuck at its first swap-outs, 20 s before C stops (as seen on 6.12)."""
    make_run(d, wedge_at=15.0)
    rows = ["0.000\thbinfo min_kb=2036 low_kb=2512 high_kb=2988"]
    t = 10.0
    while t <= 85.0:
        stuck = t >= 15.0
        rows.append(hb_line(t, 1, 49020 if stuck else int((t - 10) * 9000),
                            pswpout if stuck else 0, 0, 33, free_kb=604, inflight=inflight))
        t = round(t + 0.1, 3)
    (d / "A" / "heartbeat.txt").write_text("\n".join(rows) + "\n")
    ev = json.loads((d / "events.json").read_text())
    ev.insert(2, {"t": 29.9, "event": "A made no progress for 20s before the stall"})
    (d / "events.json").write_text(json.dumps([e for e in ev if e["event"] != "steady swapping"]))
    return d


def test_stuck_at_first_swap_out_is_a_wedge_before_the_stall(tmp_path):
    res = judge(stuck_first(tmp_path, inflight=2, pswpout=21))
    assert st(res)["swap_over_nbd"] == "PASS", res.checks[1].detail
    assert st(res)["survived"] == "XFAIL" and res.metrics["wedged"] == "before the stall"
    assert "before C stopped" in res.check("survived").detail


def test_stuck_without_swap_to_nbd_fails(tmp_path):
    assert st(judge(stuck_first(tmp_path, inflight=0, pswpout=0)))["swap_over_nbd"] == "FAIL"


def test_a_from_9p_renders_and_mounts_the_host(tmp_path):
    import subprocess

    p = {**netswap.PARAMS, "a_root": "9p"}
    text = netswap._script("A", p, "10.99.0.3", "/c/netjob")
    assert "mount -t 9p" in text and "/host/c/netjob 240" in text
    (tmp_path / "a.sh").write_text(text)
    assert subprocess.run(["sh", "-n", str(tmp_path / "a.sh")]).returncode == 0
    m = fleet.Machine(fleet.MachineSpec("A", virtfs={"kexphost": "/"}),
                      fleet.Fleet(tmp_path, "/bz", [], []))
    m.fleet.sockdir = "/s"
    assert any("mount_tag=kexphost" in a and "readonly=on" in a for a in m.argv(Path("/i"), []))


def test_link_fault_stall_window(tmp_path):
    """A stall made at the switch (events "stall start"/"stall end"): a slow
    link may still complete NBD I/O, a dropped one may not."""
    d = make_run(tmp_path, stall_io=True, freeze=True)
    (d / "C" / "out.txt").write_text("".join(f"{t}.2\tc-io 1\n" for t in range(5, 85)))
    ev = json.loads((d / "events.json").read_text())
    for e in ev:
        e["event"] = {"freeze C": "stall start", "thaw C": "stall end"}.get(e["event"], e["event"])
    (d / "events.json").write_text(json.dumps(ev))
    assert st(judge(d, stall_kind="slow"))["stall_effective"] == "PASS"
    assert st(judge(d, stall_kind="drop"))["stall_effective"] == "FAIL"


REC = Path(__file__).resolve().parent.parent / "data" / "runs" / "netswap-flood"


def test_recorded_wedge_fails_once_survival_is_asserted():
    """The real baseline wedge (hung tasks on A) is a crash, not an XFAIL,
    once the survival work claims it; the real survivor still passes."""
    for name, want in (("baseline", "CRASH"), ("baseline@no-flood", "PASS")):
        d = REC / name
        params = json.loads((d / "expected.json").read_text())["params"]
        res = judge(d, **{**params, "assert_survival": True})
        assert res.outcome == want, (name, [(c.name, c.status) for c in res.checks], res.crash)


def test_a_machine_that_panics_before_ready_is_a_crash(tmp_path, monkeypatch):
    """The runner gives up (BootError) on a machine that never got ready; its
    console decides: a panic is CRASH, not an infrastructure ERROR."""
    from harness import scenario
    from harness.errors import BootError
    from harness.kernel import Kernel

    def runner(scn, kernel, rundir, accel, res):
        (rundir / "B").mkdir(parents=True)
        (rundir / "B" / "console.log").write_text("[ 3.0] Kernel panic - not syncing: boom\n")
        raise BootError("B: QEMU exited before 'kexp-ready'")

    k = Kernel(kind="baseline", image="/bz", release="r", version="v", base="a" * 40,
               head="b" * 40, series_hash="e", config_hash="c", origin="t", out="/o", src="/s")
    scn = dataclasses.replace(netswap.SCENARIO, runner=runner)
    monkeypatch.setattr(scenario, "requested_options", lambda k: [])
    res = scenario.run(scn, k, tmp_path / "r", accel="tcg")
    assert res.outcome == "CRASH", (res.outcome, res.error)

    def runner2(scn, kernel, rundir, accel, res):
        raise BootError("B: no 'kexp-ready' within 240s")

    res = scenario.run(dataclasses.replace(scn, runner=runner2), k, tmp_path / "r2", accel="tcg")
    assert res.outcome == "ERROR"


def test_report_note_says_recorded(tmp_path):
    from harness import results

    res = judge(make_run(tmp_path, wedge_at=52.0))
    assert results.note(res) == "recorded, not asserted: survived"
