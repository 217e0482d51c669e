"""Where a server's CPU time goes, by owner: our code, or the libraries it runs on (grpcio, aiohttp, cryptography...).

The benchmarks' `--profile` option samples the server process with py-spy (native frames included) while one case
runs again, then charges every sample to the innermost frame that has a clear owner. Interpreter and libc frames
(dict lookups, the JSON scanner, malloc) are charged to the Python code that called them, so "ours" means time our
modules spend, including the builtins they call, and "grpcio" means time inside grpcio's own Python, Cython and C++.

Run on its own against any process: `python -m bench.where --pid N --seconds 5`.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*) \((?P<where>[^()]*)\)$")

# (substring of a frame's file or library, owner): first match wins, checked in order.
_OWNERS: tuple[tuple[str, str], ...] = (
    ("grpc/_cython", "grpcio"),
    ("cygrpc", "grpcio"),
    ("libgrpc", "grpcio"),
    ("grpc/", "grpcio"),
    ("grpc_health", "grpcio"),
    ("cryptography/", "cryptography"),
    ("_rust.abi3", "cryptography"),
    ("google/protobuf", "protobuf"),
    ("_upb", "protobuf"),
    ("aiohttp/", "aiohttp"),
    ("multidict", "aiohttp"),
    ("yarl", "aiohttp"),
    ("propcache", "aiohttp"),
    ("aiosignal", "aiohttp"),
    ("frozenlist", "aiohttp"),
    ("_http_parser", "aiohttp"),
    ("asyncpg", "asyncpg"),
    ("psycopg", "psycopg"),
    ("sqlite3", "sqlite"),
    ("libsqlite", "sqlite"),
    ("aiosqlite", "sqlite"),
    ("re2", "re2"),
    ("_re2", "re2"),
    ("rfc8785", "rfc8785"),
    ("regorus", "regorus"),
    ("jwt/", "pyjwt"),
    ("jinja2", "jinja2"),
    ("prometheus_client", "prometheus_client"),
    ("_hashopenssl", "hashlib"),
    ("hashlib", "hashlib"),
    ("libcrypto", "hashlib"),
    ("asyncio/", "asyncio"),
    ("_asynciomodule", "asyncio"),
    ("selectors.py", "asyncio"),
    ("uvloop", "asyncio"),
    ("threading.py", "threads"),
    ("concurrent/futures", "threads"),
    ("queue.py", "threads"),
)
_OURS = ("coresdk/", "sidecar/", "gateway/", "controlplane/")
# A sample whose innermost named frame is one of these is a thread blocked in the kernel (an idle event loop or
# poller in epoll_wait, an idle pool worker on its queue's lock): not CPU time, so not charged to anyone.
_IDLE = frozenset(
    {
        "epoll_wait",
        "epoll_pwait",
        "poll",
        "__poll",
        "select",
        "PyThread_acquire_lock_timed",
        "sem_wait",
        "sem_timedwait",
        "pthread_cond_wait",
        "pthread_cond_timedwait",
        "futex_wait",
        "syscall",
        "nanosleep",
        "clock_nanosleep",
    }
)


@dataclass(frozen=True)
class Profile:
    samples: int
    owners: Counter[str]
    ours: Counter[str]
    idle: int = 0

    def share(self, owner: str) -> float:
        return self.owners[owner] / self.samples if self.samples else 0.0


def _owner(where: str) -> str | None:
    for mark in _OURS:
        if where.startswith(mark) or f"/{mark}" in where:
            return "ours"
    for mark, owner in _OWNERS:
        if mark in where:
            return owner
    return None


def charge(stack: str) -> tuple[str, str]:
    """(owner, innermost frame of ours or "") for one collapsed stack, root first, frames separated by ';'.
    The owner is "idle" for a thread blocked in the kernel."""
    frames = stack.split(";")
    for frame in reversed(frames):
        if not frame.startswith("0x"):
            if frame.split(" (", 1)[0] in _IDLE:
                return "idle", ""
            break
    for frame in reversed(frames):
        m = _FRAME.match(frame)
        if m is None:
            continue
        owner = _owner(m["where"])
        if owner == "ours":
            return "ours", f"{m['func']} ({m['where'].rsplit(':', 1)[0]})"
        if owner is not None:
            return owner, ""
    return "interpreter", ""


def parse(raw: str) -> Profile:
    owners: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    total = idle = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        owner, frame = charge(stack)
        if owner == "idle":
            idle += n
            continue
        total += n
        owners[owner] += n
        if frame:
            ours[frame] += n
    return Profile(total, owners, ours, idle)


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not os.access(found, os.X_OK):
        raise SystemExit("py-spy is not installed: pip install py-spy")
    return found


@dataclass
class Recording:
    proc: subprocess.Popen[bytes]
    output: Path


def record(pid: int, seconds: float, rate: int = 400) -> Recording:
    """Start sampling pid (all threads, native frames) for `seconds`; wait on the result with collect()."""
    fd, name = tempfile.mkstemp(prefix="coresdk-profile-", suffix=".raw")
    os.close(fd)
    cmd = [py_spy(), "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))), "--rate", str(rate)]
    cmd += ["--native", "--format", "raw", "--output", name]
    return Recording(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), Path(name))


def collect(recording: Recording) -> Profile:
    recording.proc.wait(120)
    try:
        return parse(recording.output.read_text())
    finally:
        recording.output.unlink(missing_ok=True)


def report(title: str, profile: Profile, top: int = 8) -> str:
    lines = [
        f"\nwhere the time goes: {title} "
        f"({profile.samples} busy samples, {profile.idle} idle left out; py-spy --native)"
    ]
    for owner, n in profile.owners.most_common():
        lines.append(f"  {owner:<20} {100 * n / profile.samples:5.1f} %")
    if profile.ours:
        lines.append("  ours, innermost frames:")
        for frame, n in profile.ours.most_common(top):
            lines.append(f"    {100 * n / profile.samples:5.1f} %  {frame}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    print(report(f"pid {args.pid}", collect(record(args.pid, args.seconds))))


if __name__ == "__main__":
    main()
