"""Process-tree helpers for lifecycle tests: a process's children, whether a pid still runs, a bounded poll, and a
service started to see how its start ends."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable

from tests.support.processes import ROOT


def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def children(pid: int) -> list[int]:
    """The pids whose parent is pid (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields is not None and int(fields[1]) == pid:
                found.append(int(entry))
    return found


def descendants(pid: int) -> list[int]:
    out: list[int] = []
    todo = [pid]
    while todo:
        for child in children(todo.pop()):
            out.append(child)
            todo.append(child)
    return out


def running(pid: int) -> bool:
    """True while pid exists and is not a zombie."""
    fields = _stat(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def poll(check: Callable[[], bool], timeout: float, every: float = 0.1) -> bool:
    """check() until it is true or timeout passes; its last answer."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return check()
        time.sleep(every)


def survivors(pids: Iterable[int], timeout: float) -> list[int]:
    """The pids still running once they have had timeout seconds to exit."""
    pids = list(pids)
    poll(lambda: not any(running(p) for p in pids), timeout)
    return [p for p in pids if running(p)]


def kill_all(pids: Iterable[int]) -> None:
    """SIGKILL exactly these pids (the test's own children's leftovers), never anything found by name."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def run_to_exit(module: str, env: dict[str, str], timeout: float) -> tuple[int | None, str]:
    """Start `python -m module` and wait for it to end: (its exit status, or None if it still ran after timeout and
    was killed, and everything it printed)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", module], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out.decode(errors="replace")
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        return None, out.decode(errors="replace")


def assert_start_refused(code: int | None, output: str, variable: str) -> None:
    """A start refused as configuration errors are: it ended, with status 2, one line naming the variable, no
    stack trace."""
    assert code is not None, f"the process did not exit after a failed start:\n{output}"
    assert code == 2, output
    assert f"configuration error: {variable}" in output, output
    assert "Traceback" not in output, output
