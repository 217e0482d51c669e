"""Child processes that end with their parent: `coresdk dev` starts a whole system, and a development system left
running after its launcher was killed holds ports, keys and a journal nobody is watching."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator

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


@contextlib.contextmanager
def interrupts_ignored() -> Iterator[None]:
    """SIGINT ignored while children are started here: an ignored signal stays ignored through exec, so a terminal's
    ^C (sent to the whole process group) cannot interrupt a child still importing its modules, before it could say
    how it answers ^C itself; the parent stops its children. Only the main thread may change dispositions; anywhere
    else this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
