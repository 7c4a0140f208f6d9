import pytest

from harness import vm
from harness.errors import BootError


def test_tcg_argv_has_force_9p_disable_kvm_and_mttcg(tmp_path):
    spec = vm.GuestSpec(name="g", memory="512M", cpus=2, disks=["/d/swap.img"],
                        append=["numa=off"], rwdirs=["/r"])
    argv = vm.vng_argv(spec, "/k/bzImage", "tcg", "bash /r/guest.sh", tmp_path / "console.log")
    assert argv[:3] == ["vng", "--run", "/k/bzImage"]
    assert "--force-9p" in argv and "--disable-kvm" in argv
    assert argv[argv.index("--memory") + 1] == "512M" and argv[argv.index("--cpus") + 1] == "2"
    assert argv[argv.index("--disk") + 1] == "/d/swap.img"
    assert argv[argv.index("--rwdir") + 1] == "/r"
    q = [a for a in argv if a.startswith("--qemu-opts=")][0]
    assert "tcg,thread=multi" in q and f"path={tmp_path}/console.log" in q and "virtconsole" in q
    appends = [argv[i + 1] for i, a in enumerate(argv) if a == "--append"]
    assert appends == ["console=hvc0", "numa=off"]
    assert argv[-2:] == ["--exec", "bash /r/guest.sh"]


def test_kvm_argv_has_no_disable_kvm(tmp_path):
    argv = vm.vng_argv(vm.GuestSpec(), "/k", "kvm", None, None)
    assert "--disable-kvm" not in argv and "--exec" not in argv
    assert not any(a.startswith("--qemu-opts") for a in argv)


def test_numa_nodes_and_distances():
    spec = vm.GuestSpec(memory="768M", numa=[vm.NumaNode("256M", "0"), vm.NumaNode("256M", "1"),
                                              vm.NumaNode("256M")],
                        numa_distance={(0, 1): 20, (0, 2): 30, (1, 2): 30})
    argv = vm.vng_argv(spec, "/k", "tcg", "true", None)
    nodes = [argv[i + 1] for i, a in enumerate(argv) if a == "--numa"]
    assert nodes == ["256M,cpus=0", "256M,cpus=1", "256M"]
    d = [argv[i + 1] for i, a in enumerate(argv) if a == "--numa-distance"]
    assert d == ["0,1=20", "0,2=30", "1,2=30"]


def test_numa_memory_must_add_up():
    spec = vm.GuestSpec(memory="512M", numa=[vm.NumaNode("128M", "0"), vm.NumaNode("256M", "1")])
    with pytest.raises(BootError, match="add up to 384M"):
        vm.vng_argv(spec, "/k", "tcg", "true", None)


def test_numa_distance_needs_every_pair():
    spec = vm.GuestSpec(memory="768M", numa=[vm.NumaNode("256M", "0"), vm.NumaNode("256M", "1"),
                                              vm.NumaNode("256M")], numa_distance={(0, 1): 20})
    with pytest.raises(BootError, match="0,2 is missing"):
        vm.vng_argv(spec, "/k", "tcg", "true", None)


def test_forced_accelerator(monkeypatch):
    monkeypatch.setenv("KEXP_ACCEL", "tcg")
    assert vm.accelerator("/nonexistent") == "tcg"


def fake_vng(tmp_path, monkeypatch, script: str):
    """A stand-in for vng: ``script`` (sh or bash) is the whole program."""
    fake = tmp_path / "vng"
    fake.write_text(script)
    fake.chmod(0o755)
    monkeypatch.setenv("KEXP_VNG", str(fake))
    return fake


def run(tmp_path, timeout=30):
    return vm.run_exec(vm.GuestSpec(timeout=timeout), "/k", "true", tmp_path / "run", accel="tcg")


def test_run_exec_with_fake_vng(tmp_path, monkeypatch):
    fake = fake_vng(tmp_path, monkeypatch,
                    "#!/bin/sh\necho 'KTAP version 1'\necho '1..1'\necho 'ok 1 fake'\nexit 0\n")
    g = run(tmp_path)
    assert g.rc == 0 and "ok 1 fake" in g.stdout
    assert (tmp_path / "run" / "argv.txt").read_text().startswith(str(fake))


def test_run_exec_panic_comes_back_with_console(tmp_path, monkeypatch):
    """A panic of the kernel under test is a verdict (CRASH), not an
    infrastructure error: run_exec returns it with the console."""
    # the fake writes a panic to the console file given in --qemu-opts
    fake_vng(tmp_path, monkeypatch,
             '#!/bin/bash\nfor a in "$@"; do case "$a" in --qemu-opts=*) '
             'f=${a##*path=}; f=${f%% *};; esac; done\n'
             'echo "Kernel panic - not syncing: boom" > "$f"\nexit 255\n')
    g = run(tmp_path)
    assert g.panicked and not g.timed_out and "boom" in g.console


def test_run_exec_qemu_failure_is_guest_lost(tmp_path, monkeypatch):
    fake_vng(tmp_path, monkeypatch,
             "#!/bin/sh\necho 'qemu: could not load kernel' >&2\nexit 255\n")
    with pytest.raises(vm.GuestLost, match="could not load kernel"):
        run(tmp_path)


def test_run_exec_retries_a_qemu_that_died_before_the_kernel(tmp_path, monkeypatch):
    """QEMU gone before the kernel's first line: booted once more, and the
    first attempt's files kept."""
    fake_vng(tmp_path, monkeypatch,
             "#!/bin/sh\nif [ -e once ]; then echo 'KTAP version 1'; exit 0; fi\n"
                    "touch once; echo 'WARNING: Image format was not specified' >&2\nexit 255\n")
    g = run(tmp_path)
    assert g.rc == 0 and g.attempts == 2
    assert "Image format" in (tmp_path / "run" / "attempt1-stderr.txt").read_text()


def test_run_exec_no_retry_once_the_kernel_has_started(tmp_path, monkeypatch):
    """A guest lost after the kernel printed its banner may be the kernel's
    doing: no second boot hides it."""
    fake_vng(tmp_path, monkeypatch,
             "#!/bin/sh\nn=$(cat n 2>/dev/null || echo 0); echo $((n + 1)) > n\n"
                    "echo '[    0.000000] Linux version 6.12.107-kexp+' >&2\nexit 255\n")
    with pytest.raises(vm.GuestLost, match="Linux version"):
        run(tmp_path)
    assert (tmp_path / "run" / "n").read_text().strip() == "1"


def test_early_panic_on_the_serial_console_is_seen(tmp_path, monkeypatch):
    """A panic before hvc0 exists reaches only the serial console (stderr)."""
    fake_vng(tmp_path, monkeypatch,
             "#!/bin/sh\necho '[    0.300000] Kernel panic - not syncing: early' >&2\n"
                    "exit 255\n")
    g = run(tmp_path)
    assert g.panicked and g.attempts == 1


def test_boot_console_drops_the_commands_stderr():
    se = "WARNING: qemu\n[    0.000000] Linux version 6.12\nmnlisten: error\n[    1.5] BUG: x\n"
    assert vm.boot_console(se) == "[    0.000000] Linux version 6.12\n[    1.5] BUG: x"
    assert vm.kernel_started(se) and not vm.kernel_started("WARNING: qemu\n")


def test_run_exec_timeout_kills_and_returns(tmp_path, monkeypatch):
    fake_vng(tmp_path, monkeypatch,
             "#!/bin/sh\necho started\nsleep 30\n")
    g = run(tmp_path, timeout=1)
    assert g.timed_out and "started" in g.stdout
    assert not vm._LIVE  # nothing of ours left running
