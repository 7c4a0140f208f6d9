"""tcgplugin.py: System.map ranges, plugin arguments, plugin output; the plugin itself
when the QEMU header is already cached (no network in unit tests)."""

import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from harness import tcgplugin as tp
from harness.paths import cache_dir

MAP = """\
ffffffff81000000 T _text
ffffffff81100000 T shrink_folio_list
ffffffff81100800 T __mem_notify_swapout
ffffffff81100900 t mem_notify_raise
ffffffff81100950 t mem_notify_raise_alias
ffffffff81100950 t mem_notify_raise.cold
ffffffff81100a00 t memcg_cs
ffffffff81100b00 t mem_notify_test_rate
ffffffff81100c00 T __cpuset_swap_veto
ffffffff81100d00 t rate_update
ffffffff81100e00 t rate_update
ffffffff81100f00 T __x64_sys_sync
ffffffff81101000 T something_else
ffffffff82000000 D mem_notify_enabled
ffffffff82000100 T mem_notify_last_symbol
"""


def test_symbol_ranges_from_system_map():
    r = {x.name: (x.start, x.end) for x in tp.symbol_ranges(MAP)}
    assert r["__mem_notify_swapout"] == (0xffffffff81100800, 0xffffffff81100900)
    assert r["mem_notify_raise"] == (0xffffffff81100900, 0xffffffff81100950)
    assert r["memcg_cs"] == (0xffffffff81100a00, 0xffffffff81100b00)
    assert r["__cpuset_swap_veto"] == (0xffffffff81100c00, 0xffffffff81100d00)
    # two static functions of one name
    assert r["rate_update"][0] == 0xffffffff81100d00 and r["rate_update#2"][0] == 0xffffffff81100e00
    # aliases at one address: one range; data symbols, KUnit cases, the last symbol: none
    assert sum(1 for n in r if n.startswith("mem_notify_raise")) == 2
    assert "mem_notify_enabled" not in r and "mem_notify_test_rate" not in r
    assert "mem_notify_last_symbol" not in r and "shrink_folio_list" not in r
    assert tp.symbol_address(MAP, "__x64_sys_sync") == 0xffffffff81100f00
    assert tp.symbol_address(MAP, "nope") is None


def test_symbol_ranges_custom_patterns():
    r = tp.symbol_ranges(MAP, patterns=[r"shrink_"], exclude=())
    assert [x.name for x in r] == ["shrink_folio_list"]


def test_plugin_arg():
    rs = [tp.Range("__mem_notify_swapout", 0xffffffff81100800, 0xffffffff81100900)]
    a = tp.plugin_arg("/c/insncount.so", rs, "/r/out.txt", mark=0xffffffff81100f00)
    assert a == ("/c/insncount.so,range=__mem_notify_swapout:ffffffff81100800:ffffffff81100900,"
                 "kernel=ffff800000000000,mark=ffffffff81100f00,out=/r/out.txt")
    assert "mark=" not in tp.plugin_arg("/p.so", [], "/o")
    with pytest.raises(tp.PluginError):
        tp.plugin_arg("/p.so", rs, "/a,b/out.txt")


OUT = """\
insncount 1
vcpus 1
kernel_start ffff800000000000
range __mem_notify_swapout ffffffff81100800 ffffffff81100900 1500 30
range mem_notify_raise ffffffff81100900 ffffffff81100950 20 1
kernel 99999
mark 0 100 0,0 0,0
mark 1 1100 500,20 10,1
mark 2 3100 1500,20 30,1
"""


def test_parse_output_and_windows():
    c = tp.parse_output(OUT)
    assert c.vcpus == 1 and c.kernel == 99999 and len(c.marks) == 3
    assert c.ranges["mem_notify_raise"] == {"start": 0xffffffff81100900, "end": 0xffffffff81100950,
                                            "insns": 20, "calls": 1}
    w = c.window(1, 2)
    assert w == {"kernel": 2000, "series": 1000,
                 "insns": {"__mem_notify_swapout": 1000, "mem_notify_raise": 0},
                 "calls": {"__mem_notify_swapout": 20, "mem_notify_raise": 0}}


def test_parse_output_without_ranges():
    c = tp.parse_output("insncount 1\nvcpus 1\nkernel 5\nmark 0 3 - -\n")
    assert c.window(0, 0)["series"] == 0 and c.marks[0]["kernel"] == 3


def test_parse_output_errors():
    with pytest.raises(tp.PluginError):
        tp.parse_output("kernel 5\n")
    with pytest.raises(tp.PluginError):
        tp.parse_output("insncount 1\nrange a 0 10 1 1\nmark 0 1 1,2 1,2\n")


def test_deb_src_lines(tmp_path):
    k = tmp_path / "k.gpg"
    k.write_text("")
    lines = tp.deb_src_lines("http://deb.debian.org/debian", "http://deb.debian.org/debian-security",
                             keyring=k)
    assert lines[0] == f"deb-src [signed-by={k}] http://deb.debian.org/debian bookworm main"
    assert lines[2].endswith("debian-security bookworm-security main")
    assert len(tp.deb_src_lines("http://m", None, keyring=tmp_path / "none")) == 2


def _cached_header() -> Path | None:
    hs = sorted((cache_dir() / "qemu-plugin" / "include").glob("*/qemu-plugin.h"))
    return hs[-1] if hs else None


@pytest.mark.skipif(_cached_header() is None or not shutil.which("gcc"),
                    reason="QEMU plugin header not cached (make bench fetches it)")
def test_plugin_counts_bios_instructions(tmp_path):
    """Compile insncount.c and run it for ~2 s on QEMU's BIOS (no kernel):
    the reset vector is one instruction executed once, and the mark there
    snapshots the counters before any instruction counted."""
    so = tmp_path / "insncount.so"
    subprocess.run(["gcc", "-O2", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter", "-shared",
                    "-fPIC", "-I", str(_cached_header().parent), "-o", str(so), str(tp.PLUGIN_SRC)],
                   check=True)
    if not shutil.which("qemu-system-x86_64"):
        pytest.skip("no qemu-system-x86_64")
    out = tmp_path / "out.txt"
    arg = tp.plugin_arg(so, [tp.Range("reset", 0xfffffff0, 0x100000000),
                             tp.Range("bios", 0xf0000, 0x100000)], out, mark=0xfffffff0,
                        kernel_start=0)
    p = subprocess.Popen(["qemu-system-x86_64", "-accel", "tcg", "-nodefaults", "-display", "none",
                          "-m", "64M", "-plugin", arg], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    try:
        p.wait(timeout=2)
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGINT)  # QEMU exits cleanly; the plugin's atexit writes
        p.wait(timeout=20)
    c = tp.parse_output(out.read_text())
    assert c.vcpus == 1
    assert c.ranges["reset"]["insns"] == 1 and c.ranges["reset"]["calls"] == 1
    assert c.ranges["bios"]["insns"] > 1000 and c.kernel > c.ranges["bios"]["insns"]
    assert c.marks[0] == {"kernel": 0, "insns": {"reset": 0, "bios": 0},
                          "calls": {"reset": 0, "bios": 0}}
