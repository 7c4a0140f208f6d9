"""Host safety check on a fake root and a fake /proc (nothing on the real host is read)."""

import os

import pytest

from harness import cli, hostcheck

SSH_SERVICE = ("[Service]\nExecStart=/usr/sbin/sshd -D\n"
               "[Install]\nWantedBy=multi-user.target\nAlias=sshd.service\n")


@pytest.fixture
def root(tmp_path):
    """Debian with openssh-server, nbd-server and earlyoom installed, every unit masked."""
    r = tmp_path / "root"
    info = r / "var/lib/dpkg/info"
    info.mkdir(parents=True)
    units = r / "lib/systemd/system"
    units.mkdir(parents=True)
    (units / "ssh.service").write_text(SSH_SERVICE)
    (units / "ssh.socket").write_text("[Socket]\nListenStream=22\n")
    (units / "earlyoom.service").write_text("[Service]\nExecStart=/usr/bin/earlyoom\n")
    (info / "openssh-server.list").write_text(
        "/.\n/etc/init.d/ssh\n/lib/systemd/system\n/lib/systemd/system/ssh.service\n"
        "/lib/systemd/system/ssh.socket\n/usr/sbin/sshd\n")
    (info / "nbd-server.list").write_text("/.\n/etc/init.d/nbd-server\n/usr/bin/nbd-server\n")
    (info / "earlyoom:amd64.list").write_text(
        "/.\n/etc/init.d/earlyoom\n/lib/systemd/system/earlyoom.service\n/usr/bin/earlyoom\n")
    etc = r / "etc/systemd/system"
    etc.mkdir(parents=True)
    for u in ("ssh.service", "ssh.socket", "sshd.service", "rescue-ssh.target", "nbd-server.service",
              "earlyoom.service"):
        (etc / u).symlink_to("/dev/null")
    for n in "0123456":
        d = r / f"etc/rc{n}.d"
        d.mkdir(parents=True)
        for s in ("ssh", "nbd-server", "earlyoom"):
            (d / f"K01{s}").symlink_to(f"../init.d/{s}")
    return r


@pytest.fixture
def proc(tmp_path):
    p = tmp_path / "proc"
    p.mkdir()
    add_proc(p, 1, "/usr/sbin/init", "init")
    add_proc(p, 4242, "/usr/bin/make", "make")
    (p / "2").mkdir()  # a kernel thread: no exe link
    (p / "self").mkdir()
    return p


def add_proc(p, pid, exe, comm, cmdline=None):
    d = p / str(pid)
    d.mkdir()
    if exe:
        os.symlink(exe, d / "exe")
    (d / "comm").write_text(comm + "\n")
    (d / "cmdline").write_bytes(((cmdline or exe or comm) + "\0").encode())


def test_masked_and_nothing_running_is_fine(root, proc):
    assert hostcheck.check(root, proc, allow=set()) == []


def test_units_from_the_file_lists_with_aliases(root):
    us, sysv = hostcheck.units(root, "openssh-server")
    assert {"ssh.service", "ssh.socket", "sshd.service", "rescue-ssh.target"} <= set(us)
    assert sysv == ["ssh"]
    assert hostcheck.units(root, "earlyoom")[0] == ["earlyoom.service"]  # multiarch list name


def test_enabled_unit_is_a_finding(root, proc):
    etc = root / "etc/systemd/system"
    (etc / "earlyoom.service").unlink()
    (etc / "multi-user.target.wants").mkdir()
    (etc / "multi-user.target.wants/earlyoom.service").symlink_to("/lib/systemd/system/earlyoom.service")
    out = hostcheck.check(root, proc, allow=set())
    assert len(out) == 1
    assert "earlyoom.service is enabled" in out[0]
    assert "/etc/systemd/system/multi-user.target.wants/earlyoom.service" in out[0]


def test_masked_unit_with_a_leftover_wants_link_is_fine(root, proc):
    etc = root / "etc/systemd/system"
    (etc / "sockets.target.wants").mkdir()
    (etc / "sockets.target.wants/ssh.socket").symlink_to("/lib/systemd/system/ssh.socket")
    assert hostcheck.check(root, proc, allow=set()) == []


def test_unmasked_but_not_enabled_is_fine(root, proc):
    (root / "etc/systemd/system/ssh.socket").unlink()
    assert hostcheck.check(root, proc, allow=set()) == []


def test_enabled_sysv_script_is_a_finding(root, proc):
    (root / "etc/rc2.d/S01nbd-server").symlink_to("../init.d/nbd-server")
    (root / "etc/rc2.d/S01nbd-client").symlink_to("../init.d/nbd-client")  # not ours
    out = hostcheck.check(root, proc, allow=set())
    assert len(out) == 1
    assert "SysV init script nbd-server is enabled" in out[0] and "/etc/rc2.d/S01nbd-server" in out[0]


def test_running_daemon_is_a_finding(root, proc):
    add_proc(proc, 777, "/usr/bin/earlyoom", "earlyoom", "/usr/bin/earlyoom -m 5")
    add_proc(proc, 778, "/usr/sbin/sshd (deleted)", "sshd", "sshd: /usr/sbin/sshd -D")
    add_proc(proc, 779, "/tmp/sshd", "sshd")  # some other binary: not ours
    out = hostcheck.check(root, proc, allow=set())
    assert len(out) == 2
    assert out[0].startswith("pid 777: /usr/bin/earlyoom is running on the host")
    assert out[1].startswith("pid 778: /usr/sbin/sshd is running on the host")
    assert "stop it" in out[0]


def test_unreadable_exe_falls_back_to_the_name(root, proc, monkeypatch):
    add_proc(proc, 900, None, "sshd")
    real = os.readlink

    def readlink(p, *a, **k):
        if str(p) == str(proc / "900" / "exe"):
            raise PermissionError(13, "Permission denied")
        return real(p, *a, **k)

    monkeypatch.setattr(hostcheck.os, "readlink", readlink)
    out = hostcheck.check(root, proc, allow=set())
    assert len(out) == 1 and out[0].startswith("pid 900: /usr/sbin/sshd is running")
    assert "by its name" in out[0]


def test_allowed_package_is_not_checked(root, proc, monkeypatch):
    (root / "etc/rc3.d/S01ssh").symlink_to("../init.d/ssh")
    add_proc(proc, 778, "/usr/sbin/sshd", "sshd")
    assert hostcheck.check(root, proc, allow={"openssh-server"}) == []
    monkeypatch.setenv("KEXP_HOST_SERVICES", "openssh-server,earlyoom")
    assert hostcheck.check(root, proc) == []
    monkeypatch.delenv("KEXP_HOST_SERVICES")
    assert len(hostcheck.check(root, proc)) == 2


def test_cli_exit_code(monkeypatch, capsys):
    monkeypatch.setattr(hostcheck, "check", lambda: [])
    assert cli.main(["host-check"]) == 0
    assert "host-check: ok" in capsys.readouterr().out
    monkeypatch.setattr(hostcheck, "check", lambda: ["earlyoom: earlyoom.service is enabled on the host"])
    assert cli.main(["host-check"]) == 1
    assert "host-check: earlyoom: earlyoom.service is enabled" in capsys.readouterr().out
