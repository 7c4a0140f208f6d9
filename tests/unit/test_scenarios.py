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
    disks = {f: f"/dev/vd{chr(97 + i)}" for i, f in enumerate(scn.disks)}
    text = scenario.render(scn.template_name, {
        "scenario": name, "kernel": FAKE, "tools": "/t", "out": str(tmp_path), "disks": disks,
        "params": scn.params, "spec": scn.guest, "feature": scn.feature,
        "extra": defaultdict(lambda: "/nonexistent")})
    assert "KTAP version 1" in text or "ktap_plan" in text
    f = tmp_path / "g.sh"
    f.write_text(text)
    p = subprocess.run(["bash", "-n", str(f)], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


def test_registry_has_boot_smoke():
    s = all_scenarios()["boot-smoke"]
    assert s.feature is None and s.ci
