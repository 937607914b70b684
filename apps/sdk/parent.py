"""Tie an app server's life to the node that started it, so a killed node leaves no app servers behind.

`AppProcess` puts its own pid in `TASKAPI_APP_PARENT_PID`; the app entrypoint calls `die_with_parent()` first
thing. On Linux that asks the kernel (`prctl(PR_SET_PDEATHSIG, SIGKILL)`) to kill this process when its parent
dies, however the parent dies (SIGKILL included), then checks the parent is still the one that started it: a
parent that died before the request was made would never trigger it. SIGKILL, not SIGTERM: nobody is left to
hear the replies, and the SDK keeps an app's state safe against a killed server (write-ahead records), which
is also what a killed node does to its app servers. A server started by hand (no variable) is left alone.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys

log = logging.getLogger(__name__)

PARENT_PID_ENV = "TASKAPI_APP_PARENT_PID"
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


class ParentGone(SystemExit):
    """The process that started this app server exited before the server could tie itself to it."""


def die_with_parent() -> None:
    """Die (SIGKILL) when the process named in `TASKAPI_APP_PARENT_PID` exits; exit now if it already has.

    Reads and removes the variable, so processes this one starts do not inherit a parent that is not theirs
    (calling it again is a no-op).
    """
    expected = os.environ.pop(PARENT_PID_ENV, None)
    if expected is None:
        return
    if not sys.platform.startswith("linux"):
        # No PR_SET_PDEATHSIG outside Linux (macOS would need a kqueue watcher on the parent's pid): there an
        # app server outlives a node killed with SIGKILL, as it always did; a node that exits normally still
        # stops its app servers itself.
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        log.warning(
            "prctl(PR_SET_PDEATHSIG) failed (errno %d): this app server may outlive its node",
            ctypes.get_errno(),
        )
        return
    # The parent may have died between starting us and the prctl above; then we were reparented and no signal
    # will ever come. (The signal follows the thread that forked us: AppProcess forks from the event loop's
    # thread, which lives as long as the node.)
    if os.getppid() != int(expected):
        raise ParentGone(f"app server: the node (pid {expected}) that started it has exited; not serving")
