"""The long-lived guest: several commands over ssh (paramiko) in one boot."""

from harness import vm
from harness.paths import runs_dir


def test_several_commands_one_boot(patched_kernel):
    d = runs_dir() / "ssh-guest"
    with vm.SshGuest(vm.GuestSpec(name="ssh", memory="256M", cpus=2), patched_kernel.image, d) as g:
        rc, out, _ = g.run("uname -r")
        assert rc == 0 and out.strip() == patched_kernel.release
        rc, boot_id, _ = g.run("cat /proc/sys/kernel/random/boot_id")
        assert rc == 0
        assert g.run("echo kept > /run/state")[0] == 0
        rc, out, _ = g.run("cat /run/state; cat /proc/sys/kernel/random/boot_id")
        assert rc == 0 and out.split() == ["kept", boot_id.strip()]  # same boot, state kept
        rc, _, err = g.run("echo oops >&2; exit 7")
        assert rc == 7 and err.strip() == "oops"
