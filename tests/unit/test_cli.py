"""The command line end to end, kernels and guests faked: exit codes and the
files a run leaves (results.json, junit.xml, report.txt) for every path."""

from __future__ import annotations

import json
import os
import signal
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field, replace

import pytest

from harness import checks as ck
from harness import cli, scenario, vm
from harness import kernel as kmod
from harness.errors import BuildError, GuestLost, HarnessError
from harness.scenario import Scenario

CONSOLE = "[    0.5] Linux version 6.12.107-kexp\n<4>kexp: console capture check\n"


def ktap(present: int = 1, value: int | None = 5) -> str:
    works = (f"# kexp-m works value={value}\nok 2 works\n" if value is not None
             else "ok 2 works # SKIP feature absent\n")
    return (f"KTAP version 1\n1..2\n# kexp-m feature_present present={present}\n"
            f"ok 1 feature_present\n{works}")


def _present(m: ck.Judging) -> ck.Verdict:
    return ck.verdict(m.int("present") == 1, f"present={m.int('present')}")


def _works(m: ck.Judging) -> ck.Verdict:
    v = m.int("value")
    return ck.verdict(v == 5, f"value={v}", bound="value == 5", value=v)


def _broken(m: ck.Judging) -> ck.Verdict:
    raise ValueError("judge bug")


FAKE = Scenario(
    name="fake",
    description="a fake scenario",
    guest=vm.GuestSpec(name="fake", memory="256M", cpus=1, timeout=60),
    template="fake.sh.j2",
    feature="fake_feature",
    params={"n": 1},
    checks=(ck.feature_probe("the feature is there", _present),
            ck.CheckDef("works", "value is 5", _works, needs_feature=True)),
)


@dataclass
class Env:
    runs: object
    scenarios: dict = field(default_factory=dict)
    guest: list = field(default_factory=list)  # what run_exec does, call by call
    calls: list = field(default_factory=list)  # (scenario rundir, image) per boot
    kill_all: int = 0
    kernel_error: Exception | None = None

    def run(self, *argv: str) -> int:
        return cli.main(["run", *argv])

    @property
    def top(self):
        return (self.runs / "latest").resolve()

    def record(self) -> dict:
        return json.loads((self.top / "results.json").read_text())

    def result(self, i: int = 0) -> dict:
        return self.record()["results"][i]

    def checks(self, i: int = 0) -> dict[str, str]:
        return {c["name"]: c["status"] for c in self.result(i)["checks"]}

    def junit(self) -> ET.Element:
        return ET.parse(self.top / "junit.xml").getroot()

    def report(self) -> str:
        return (self.top / "report.txt").read_text()


def guest(stdout: str = "", console: str = CONSOLE, rc: int = 0, **kw) -> vm.GuestResult:
    return vm.GuestResult("fake", rc, stdout, "", console, 1.0, ["vng"], "tcg", **kw)


def fake_kernel(kind: str, tmp) -> kmod.Kernel:
    return kmod.Kernel(kind=kind, image=str(tmp / f"{kind}-bzImage"), release=f"6.12.107-kexp-{kind}",
                       version="6.12.107", base="a" * 40, head=("b" if kind == "patched" else "a") * 40,
                       series_hash="s", config_hash="c", origin="test", out=str(tmp), src=str(tmp))


@pytest.fixture
def env(tmp_path, monkeypatch) -> Env:
    for v in ("CI", "STRICT", "KEXP_KEEP_DISKS", "KEXP_ACCEL"):
        monkeypatch.delenv(v, raising=False)
    monkeypatch.setenv("KEXP_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("KEXP_CACHE", str(tmp_path / "cache"))
    e = Env(runs=tmp_path / "runs", scenarios={"fake": FAKE})
    tpl = tmp_path / "templates"
    tpl.mkdir()
    (tpl / "fake.sh.j2").write_text("echo {{ scenario }} on {{ kernel.kind }}: 1..{{ checks|length }}\n")
    monkeypatch.setattr(scenario, "TEMPLATES", tpl)
    monkeypatch.setattr(scenario, "guest_tools", lambda: tmp_path / "tools")
    monkeypatch.setattr(vm, "accelerator", lambda image: "tcg")

    def run_exec(spec, image, cmd, rundir, accel=None, env=None):
        e.calls.append((rundir, image))
        step = e.guest.pop(0)
        if isinstance(step, BaseException):
            raise step
        if callable(step):
            return step()
        return step

    def kill_all():
        e.kill_all += 1
        return 0

    def kernel(kind, args):
        if e.kernel_error is not None:
            raise e.kernel_error
        return fake_kernel(kind, tmp_path)

    def get(name):
        return e.scenarios[name]

    monkeypatch.setattr(vm, "run_exec", run_exec)
    monkeypatch.setattr(vm, "kill_all", kill_all)
    monkeypatch.setattr(cli, "_kernel", kernel)
    monkeypatch.setattr(cli, "get", get)
    monkeypatch.setattr(cli, "all_scenarios", lambda: dict(e.scenarios))
    return e


def test_healthy_run(env):
    env.guest = [guest(ktap())]
    assert env.run() == 0  # no names: every CI scenario
    rec = env.record()
    assert rec["exit_code"] == 0 and rec["summary"]["PASS"] == 1
    assert rec["kernel"]["patched"]["release"] == "6.12.107-kexp-patched"
    r = env.result()
    assert (r["scenario"], r["kernel"], r["outcome"], r["error"], r["crash"]) == \
        ("fake", "patched", "PASS", "", "")
    assert env.checks() == {"feature_present": "PASS", "works": "PASS"}
    assert r["checks"][1]["values"] == {"value": 5} and r["checks"][1]["bound"] == "value == 5"
    # the guest ran the rendered script on the patched kernel's image
    rundir, image = env.calls[0]
    assert rundir == env.top / "fake" / "patched" and image.endswith("patched-bzImage")
    assert (rundir / "guest.sh").read_text() == "echo fake on patched: 1..2\n"
    assert (rundir / "ktap.log").read_text() == ktap()
    suite = env.junit().find("testsuite")
    assert suite.get("name") == "fake[patched]" and suite.get("tests") == "2"
    assert suite.find("properties/property").get("value") == "PASS"
    assert [tc.get("name") for tc in suite.iter("testcase")] == ["feature_present", "works"]
    assert not list(suite.iter("failure")) and not list(suite.iter("error"))
    rep = env.report()
    assert "fake" in rep and "PASS" in rep and "exit code 0" in rep


def test_both_kernels(env):
    env.guest = [guest(ktap()), guest(ktap(present=0, value=None))]
    assert env.run("--both") == 0
    assert [(r["kernel"], r["outcome"]) for r in env.record()["results"]] == \
        [("patched", "PASS"), ("baseline", "XFAIL")]
    assert env.calls[1][1].endswith("baseline-bzImage")


def test_baseline_feature_absent_is_xfail(env):
    env.guest = [guest(ktap(present=0, value=None))]
    assert env.run("fake", "--baseline") == 0
    r = env.result()
    assert r["kernel"] == "baseline" and r["outcome"] == "XFAIL" and r["feature_missing"]
    assert env.checks() == {"feature_present": "XFAIL", "works": "SKIP"}
    assert env.record()["exit_code"] == 0 and env.record()["summary"]["XFAIL"] == 1
    suite = env.junit().find("testsuite")
    assert suite.find("properties/property").get("value") == "XFAIL"
    assert not list(suite.iter("failure")) and not list(suite.iter("error"))
    assert "expected: feature absent" in suite.find("testcase/system-out").text
    assert "feature absent on the unpatched kernel, as expected" in env.report()


@pytest.mark.parametrize("kind,stdout,bad", [
    ("patched", ktap(value=4), "works"),  # a measurement out of bounds
    ("patched", ktap(present=0, value=None), "feature_present"),  # the feature missing where it must be
    ("baseline", ktap(present=1, value=5), "feature_present"),  # present where it must not be
])
def test_failing_check(env, kind, stdout, bad):
    env.guest = [guest(stdout)]
    assert env.run("fake", *(["--baseline"] if kind == "baseline" else [])) == 1
    r = env.result()
    assert r["outcome"] == "FAIL" and r["error"] == "" and r["crash"] == ""
    assert env.checks()[bad] == "FAIL"
    assert env.record()["exit_code"] == 1
    failures = [tc.get("name") for tc in env.junit().iter("testcase") if tc.find("failure") is not None]
    assert failures == [bad]
    assert f"failed: {bad}" in env.report() and "exit code 1" in env.report()


def test_early_oops_on_the_serial_console_is_a_crash(env):
    """An oops before hvc0 came up reaches only the serial console (vng's
    stderr): CRASH, not a lost guest."""
    env.guest = [vm.GuestResult("fake", 255, "", "WARNING: Image format\n[    0.9] Oops: 0002 [#1] SMP\n",
                                "", 1.0, ["vng"], "tcg")]
    assert env.run("fake") == 1
    assert env.result()["crash"] == "oops: Oops: 0002 [#1] SMP"


def test_warning_splat_fails_a_passing_run(env):
    env.guest = [guest(ktap(), console=CONSOLE + "[    3.1] WARNING: CPU: 0 PID: 1 at mm/vmscan.c:1 x\n")]
    assert env.run("fake") == 1
    r = env.result()
    assert r["outcome"] == "FAIL" and [s["kind"] for s in r["splats"]] == ["warning"]
    assert env.checks() == {"feature_present": "PASS", "works": "PASS"}


@pytest.mark.parametrize("g,why", [
    # the panic flag of the VM layer, console lost: still a crash
    (guest("KTAP version 1\n1..2\n# kexp-m feature_present present=1\nok 1 feature_present\n",
           console="", panicked=True), "kernel panic"),
    # an Oops on the console in the middle of the guest script
    (guest("KTAP version 1\n1..2\n# kexp-m feature_present present=1\nok 1 feature_present\n",
           console=CONSOLE + "[   12.0] Oops: 0000 [#1] PREEMPT SMP\n[   12.0] RIP: 0010:foo\n"),
     "oops: Oops: 0000 [#1] PREEMPT SMP"),
    # a crash after a complete verdict is still a crash, and a timeout with a hung task
    (guest(ktap(), console=CONSOLE + "INFO: task kworker:1 blocked for more than 120 seconds.\n",
           timed_out=True), "hung_task: INFO: task kworker:1 blocked for more than 120 seconds."),
])
def test_crash(env, g, why):
    env.guest = [g]
    assert env.run("fake") == 1
    r = env.result()
    assert r["outcome"] == "CRASH" and r["crash"] == why and r["error"] == ""
    assert env.checks()["feature_present"] == "PASS"  # judged up to the crash
    if "ok 2" not in g.stdout:
        assert env.checks()["works"] == "SKIP"  # not reached
        assert r["checks"][1]["detail"] == "not reached"
    assert env.record()["exit_code"] == 1 and env.record()["summary"]["CRASH"] == 1
    kinds = [f.get("type") for f in env.junit().iter("failure")]
    assert "crash" in kinds
    assert "crash: " in env.report()


def test_build_error_is_an_infrastructure_error(env):
    env.kernel_error = BuildError("kernel build failed (rc=2)")
    assert env.run("fake") == 2
    assert env.calls == []
    r = env.result()
    assert r["outcome"] == "ERROR" and r["error"] == "build: kernel build failed (rc=2)"
    assert r["checks"] == []
    assert env.record()["exit_code"] == 2 and env.record()["kernel"] == {}
    errors = [e.get("message") for e in env.junit().iter("error")]
    assert errors == ["build: kernel build failed (rc=2)"]
    assert "ERROR" in env.report() and "exit code 2" in env.report()


@pytest.mark.parametrize("g,stage", [
    (GuestLost("fake: vng/qemu failed (rc=255): qemu: could not open disk"), "guest-lost: "),
    (guest("", rc=1), "scenario: guest printed no KTAP"),  # the script died before KTAP
    (guest("KTAP version 1\n1..2\nok 1 feature_present\n"), "scenario: KTAP incomplete"),
    (guest(ktap(), timed_out=True), "scenario: guest gave no verdict"),  # no crash on the console
])
def test_guest_infrastructure_error(env, g, stage):
    env.guest = [g]
    assert env.run("fake") == 2
    r = env.result()
    assert r["outcome"] == "ERROR" and r["error"].startswith(stage), r["error"]
    assert env.record()["exit_code"] == 2
    assert list(env.junit().iter("error"))
    assert env.kill_all >= 1  # every guest stopped after the scenario


def test_error_wins_over_fail(env):
    env.scenarios["fake2"] = replace(FAKE, name="fake2")
    env.guest = [guest(ktap(value=4)), GuestLost("gone")]
    assert env.run("fake", "fake2") == 2
    assert [r["outcome"] for r in env.record()["results"]] == ["FAIL", "ERROR"]


def test_judge_exception_is_an_error_with_a_record(env):
    env.scenarios["fake"] = replace(FAKE, checks=(FAKE.checks[0], ck.CheckDef("works", "d", _broken)))
    env.guest = [guest(ktap())]
    assert env.run("fake") == 2
    r = env.result()
    assert r["outcome"] == "ERROR"
    assert r["error"].startswith("harness: unexpected ValueError: judge bug")
    assert "Traceback" in r["error"]  # the harness bug's traceback is in the record
    assert env.record()["exit_code"] == 2
    assert (env.top / "junit.xml").is_file() and "exit code 2" in env.report()


def test_kernel_exception_is_an_error_with_a_record(env):
    env.kernel_error = RuntimeError("oops in the harness")
    assert env.run("fake", "--both") == 2
    rec = env.record()
    assert [(r["kernel"], r["outcome"], r["error"]) for r in rec["results"]] == [
        ("patched", "ERROR", "harness: oops in the harness"),
        ("baseline", "ERROR", "harness: oops in the harness")]
    assert rec["exit_code"] == 2


def test_unknown_scenario_exits_2(env, monkeypatch):
    def get(name):
        raise HarnessError(f"unknown scenario {name!r}")

    monkeypatch.setattr(cli, "get", get)
    assert env.run("nope") == 2
    assert env.calls == []


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_interrupt_during_a_scenario(env, how):
    env.scenarios["fake2"] = replace(FAKE, name="fake2")

    def interrupted():
        if how == "sigterm":
            os.kill(os.getpid(), signal.SIGTERM)  # guarded() turns it into KeyboardInterrupt
        raise KeyboardInterrupt

    old = signal.getsignal(signal.SIGTERM)
    env.guest = [guest(ktap()), interrupted]
    assert env.run("fake", "fake2") == 130
    assert signal.getsignal(signal.SIGTERM) == old  # restored
    assert env.kill_all >= 2  # in the scenario's cleanup and in guarded()
    rec = env.record()  # written on the way out, with what ran so far
    assert [(r["scenario"], r["outcome"]) for r in rec["results"]] == [("fake", "PASS"),
                                                                       ("fake2", "ERROR")]
    assert rec["exit_code"] == 2 and "interrupted" in rec["results"][1]["error"]
    assert (env.top / "junit.xml").is_file() and (env.top / "report.txt").is_file()


# Bugs found in the framework while writing these tests (now fixed).


def test_interrupted_record_does_not_read_as_a_pass(env):
    env.scenarios["fake2"] = replace(FAKE, name="fake2")
    env.guest = [guest(ktap()), KeyboardInterrupt()]
    assert env.run("fake", "fake2") == 130
    assert env.record()["exit_code"] != 0


def test_runs_in_the_same_second_keep_their_records(env, monkeypatch):
    monkeypatch.setattr(cli.results, "stamp", lambda: "20260101-000000")
    env.guest = [guest(ktap(value=4)), guest(ktap())]
    assert env.run("fake") == 1
    assert env.run("fake") == 0
    codes = sorted(json.loads(f.read_text())["exit_code"] for f in env.runs.glob("*/results.json")
                   if f.parent.name != "latest")
    assert codes == [0, 1]


def test_junit_counts_every_testcase(env):
    env.guest = [guest("KTAP version 1\n1..2\n# kexp-m feature_present present=1\nok 1 feature_present\n",
                       console=CONSOLE + "Oops: 0000 [#1] SMP\n")]
    assert env.run("fake") == 1
    suite = env.junit().find("testsuite")
    assert int(suite.get("tests")) == len(suite.findall("testcase"))


def test_param_overrides_keep_types():
    import pytest

    from harness.cli import with_params
    from harness.errors import HarnessError
    from harness.scenarios import get

    s = with_params(get("netswap-flood"), ["stall_s=40", "topology=p2p", "assert_survival=1",
                                           "resume_s=0.5"])
    assert s.params["stall_s"] == 40 and s.params["topology"] == "p2p"
    assert s.params["assert_survival"] is True and s.params["resume_s"] == 0.5
    for bad in ("nosuch=1", "stall_s=x", "stall_s", "assert_survival=maybe"):
        with pytest.raises(HarnessError):
            with_params(get("netswap-flood"), [bad])
