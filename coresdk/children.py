"""Child processes that end with their parent: `coresdk dev` starts a whole system, and a development system left
running after its launcher was killed holds ports, keys and a journal nobody is watching."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent() -> Callable[[], None] | None:
    """A `preexec_fn` for subprocess.Popen: on Linux the child gets SIGTERM (its graceful stop) when the process
    that started it ends, however it ends, SIGKILL included. None elsewhere (no such facility)."""
    if not sys.platform.startswith("linux"):
        return None
    parent = os.getpid()
    libc = ctypes.CDLL(None, use_errno=True)

    def in_child() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent ended before the request above took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return in_child
