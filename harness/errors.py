"""Error types.

Every failure of the *infrastructure* (fetching, patching, configuring, building,
booting, losing a guest, timing out) is a HarnessError.  Such errors are reported
as ERROR and exit code 2; they never read as a test FAIL, which is reserved for a
check that ran in the guest and measured the wrong outcome.
"""


class HarnessError(Exception):
    """Base of all infrastructure errors."""

    stage = "harness"


class FetchError(HarnessError):
    stage = "fetch"


class SeriesError(HarnessError):
    stage = "series"


class ConfigError(HarnessError):
    stage = "config"


class BuildError(HarnessError):
    stage = "build"


class BootError(HarnessError):
    stage = "boot"


class GuestLost(BootError):
    """The guest died (panic, QEMU crash, lost I/O channel)."""

    stage = "guest-lost"


class GuestTimeout(BootError):
    stage = "guest-timeout"


class ScenarioError(HarnessError):
    """The scenario could not produce a verdict (no KTAP, bad template...)."""

    stage = "scenario"
