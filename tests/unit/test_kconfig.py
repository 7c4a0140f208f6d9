import pytest

from harness import kconfig
from harness.errors import ConfigError


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_parse_set_unset_and_strings(tmp_path):
    c = kconfig.parse('CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_S="-kexp"\n# comment\n\n')
    assert c["CONFIG_A"].value == "y" and c["CONFIG_B"].value == "n"
    assert c["CONFIG_S"].value == '"-kexp"'


def test_parse_rejects_garbage():
    with pytest.raises(ConfigError, match="not a Kconfig line"):
        kconfig.parse("CONFIG_A=y\nFOO BAR\n", "frag.config")


def test_validate_names_dropped_options(tmp_path):
    f1 = write(tmp_path, "a.config", "CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=y\n")
    f2 = write(tmp_path, "b.config", "CONFIG_D=16\n")
    final = kconfig.parse("CONFIG_A=y\nCONFIG_B=y\nCONFIG_D=8\n")
    probs = kconfig.validate(final, [f1, f2])
    assert len(probs) == 3
    assert any("CONFIG_B=n requested by a.config:2" in p for p in probs)
    assert any("CONFIG_C=y" in p and "unknown to this tree" in p for p in probs)
    assert any("CONFIG_D=16 requested by b.config:1 but the final .config has CONFIG_D=8" in p
               for p in probs)


def test_unset_option_absent_from_config_is_fine(tmp_path):
    f = write(tmp_path, "a.config", "# CONFIG_X is not set\n")
    assert kconfig.validate(kconfig.parse("CONFIG_A=y\n"), [f]) == []


def test_later_fragment_overrides_earlier(tmp_path):
    f1 = write(tmp_path, "a.config", "CONFIG_A=y\n")
    f2 = write(tmp_path, "b.config", "# CONFIG_A is not set\n")
    assert kconfig.requested([f1, f2])["CONFIG_A"].value == "n"


def test_check_or_raise(tmp_path):
    f = write(tmp_path, "a.config", "CONFIG_A=y\n")
    cfg = write(tmp_path, ".config", "# CONFIG_A is not set\n")
    with pytest.raises(ConfigError, match="1 requested option"):
        kconfig.check_or_raise(cfg, [f])


def test_project_fragments_parse_and_are_consistent():
    frags = kconfig.fragment_paths(kconfig.COMMON + kconfig.SERIES + kconfig.DEBUG)
    req = kconfig.requested(frags)
    assert req["CONFIG_SWAP"].value == "y"
    assert req["CONFIG_VM_EVENT_COUNTERS"].value == "y"  # tinyconfig drops it: pswpout
    assert req["CONFIG_BLOCK"].value == "y"
    assert req["CONFIG_MODULES"].value == "n"
    # one definition per option across the common fragments
    seen = {}
    for f in kconfig.fragment_paths(kconfig.COMMON):
        for name in kconfig.parse_file(f):
            assert name not in seen, f"{name} in {f.name} and {seen.get(name)}"
            seen[name] = f.name
