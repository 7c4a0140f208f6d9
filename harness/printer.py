"""Progress lines: ``[HH:MM:SS +elapsed] stage: message`` on stderr.

Long steps (builds, boots) print as they go so a CI log shows where time goes.
Colour is used only on a TTY; under CI (``$CI`` set) group markers are emitted.
"""

import os
import sys
import time

_T0 = time.monotonic()


def _stream():
    # pytest may capture sys.stderr; progress must still reach the log.
    return sys.__stderr__ or sys.stderr


def log(stage: str, msg: str) -> None:
    el = time.monotonic() - _T0
    line = f"[{time.strftime('%H:%M:%S')} +{el:6.1f}s] {stage}: {msg}"
    s = _stream()
    if s.isatty() and not os.environ.get("NO_COLOR"):
        line = f"\033[1m{line}\033[0m" if stage in ("ERROR", "FAIL") else line
    print(line, file=s, flush=True)


def warn(msg: str) -> None:
    log("warning", msg)
