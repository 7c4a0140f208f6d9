"""Every scenario renders to a shell script that bash accepts."""

import subprocess
from collections import defaultdict

import pytest

from harness import kernel, scenario
from harness.scenarios import all_scenarios

FAKE = kernel.Kernel(kind="patched", image="/k/bzImage", release="6.12.107-kexp",
                     version="6.12.107", base="a" * 40, head="b" * 40, series_hash="empty",
                     config_hash="c", origin="test", out="/o", src="/s")


@pytest.mark.parametrize("name", sorted(all_scenarios()))
def test_renders_and_parses(name, tmp_path):
    scn = all_scenarios()[name]
    if scn.runner:  # several machines: each role's script must parse (busybox sh)
        from harness.scenarios import netswap
        for role in ("A", "B", "C"):
            f = tmp_path / f"{role}.sh"
            f.write_text(netswap._script(role, scn.params, "10.99.0.3"))
            p = subprocess.run(["sh", "-n", str(f)], capture_output=True, text=True)
            assert p.returncode == 0, p.stderr
        return
    disks = {f: f"/dev/vd{chr(97 + i)}" for i, f in enumerate(scn.disks)}
    text = scenario.render(scn.template_name, {
        "scenario": name, "kernel": FAKE, "tools": "/t", "out": str(tmp_path), "disks": disks,
        "params": scn.params, "spec": scn.guest, "feature": scn.feature, "checks": scn.checks,
        "extra": defaultdict(lambda: "/nonexistent")})
    assert f"1..{len(scn.checks)}" in text
    f = tmp_path / "g.sh"
    f.write_text(text)
    p = subprocess.run(["bash", "-n", str(f)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


def test_registry_has_boot_smoke():
    s = all_scenarios()["boot-smoke"]
    assert s.feature is None and s.ci


@pytest.mark.parametrize("name", sorted(all_scenarios()))
def test_declared_checks(name):
    """Every scenario declares its checks, each with a judge and a description;
    a feature scenario has exactly one probe; negative controls name checks
    that exist and are not part of `make test`'s normal runs."""
    scn = all_scenarios()[name]
    names = [c.name for c in scn.checks]
    assert names and len(names) == len(set(names))
    assert all(c.doc and callable(c.judge) for c in scn.checks)
    probes = [c for c in scn.checks if c.probe]
    assert len(probes) == (1 if scn.feature else 0)
    if scn.expect_outcome:
        assert set(scn.expect_fail) <= set(names) and not scn.ci and scn.base


def test_every_feature_scenario_has_a_negative_control():
    scns = all_scenarios()
    feature = {n for n, s in scns.items() if s.feature and s.ci}
    covered = {s.base for s in scns.values() if s.expect_fail}
    assert feature <= covered, feature - covered
