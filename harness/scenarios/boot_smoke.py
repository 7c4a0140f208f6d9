"""boot-smoke: the built kernel boots and has what every other scenario needs.

Checks (all measured in the guest): kernel release and built commit, every
option the fragments ask for visible in /proc/config.gz, swap on a virtio disk
takes real writes (pswpout rises under a non-zero hog), cgroup v2 cpuset and
memory controllers present, and the NUMA nodes the spec asked for.
"""

from ..scenario import Scenario
from ..vm import GuestSpec, NumaNode

SCENARIO = Scenario(
    name="boot-smoke",
    description="kernel version/commit, config, swap on virtio disk, cgroup v2, NUMA nodes",
    guest=GuestSpec(name="smoke", memory="384M", cpus=2,
                    numa=[NumaNode("192M", "0"), NumaNode("192M", "1")], timeout=420),
    disks={"swap.img": "512M"},
    params={"hog_mb": 448, "numa_online": "0-1"},
)
