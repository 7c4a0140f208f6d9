"""Host-side arithmetic of notify-latency and the bench table (guest data is synthetic here)."""

from harness.scenarios import notify_latency as nl

RUNS = "1 1000000000 3000000000 1500000000 10\n2 5000000000 7000000000 5200000000 20\n"
LOG = "\n".join([
    "# 900 mem_notify listening",
    # run 1: SWAP read 1 ms before the first write (decision precedes the write)
    "mem_notify 1499000000 kind=1 level=1 seq=1 swapouts=1 kts=1498500000",
    "mem_notify 2000000000 kind=4 level=0 seq=2 swapouts=9 kts=1999000000",
    # run 2: read 2 ms after the write
    "mem_notify 5202000000 kind=1 level=1 seq=3 swapouts=10 kts=5199000000",
    # a peer that fires early (page-cache reclaim) and then 50 ms after the write
    "vmpressure 1400000000 count=1",
    "vmpressure 1550000000 count=1",
    "psi-1ms 5300000000 trigger fired",
])


def test_latencies_signed_for_mem_notify_first_after_ref_for_peers():
    lat = nl.latencies(RUNS, LOG)
    assert lat["mem_notify"]["delay"] == [-1.0, 2.0]
    assert lat["mem_notify"]["delivery"] == [0.5, 3.0]
    assert lat["vmpressure"]["delay"] == [50.0] and lat["vmpressure"]["early"] == 1
    assert lat["psi-1ms"]["delay"] == [100.0]


def test_percentile():
    assert nl.percentile([1, 2, 3, 4], 50) == 2.5
    assert nl.percentile([5], 99) == 5


def test_parse_killrun():
    from harness.scenarios import cpuset

    runs = cpuset.parse_killrun("off pages=900 writes=880 hog1=0 hog2=0\n"
                                "task pages=3 writes=2 hog1=137 hog2=137 sleeper_alive=1\n")
    assert runs["off"]["pages"] == "900" and runs["task"]["sleeper_alive"] == "1"
