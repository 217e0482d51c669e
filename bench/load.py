"""The closed-loop load generator every benchmark uses: n calls, `concurrency` in flight, latencies recorded."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads) and of its running children, from /proc/<pid>/stat fields 14 and
    15: what a server spent, apart from the load generator on the same cores."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += (task / "children").read_text().split()
    return own + sum(cpu_seconds(int(child)) for child in children)


async def run_load(n: int, concurrency: int, call: Callable[[int], Awaitable[object]]) -> tuple[float, list[float]]:
    """(calls per second, per-call latencies in seconds)."""
    latencies: list[float] = []
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < n:
            i = next_index
            next_index += 1
            t0 = time.perf_counter()
            await call(i)
            latencies.append(time.perf_counter() - t0)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return n / (time.perf_counter() - started), latencies


async def run_interleaved(
    n: int,
    concurrency: int,
    calls: dict[str, Callable[[int], Awaitable[object]]],
    rounds: int = 4,
    server_pid: int | None = None,
    server_cpu: dict[str, float] | None = None,
    client_cpu: dict[str, float] | None = None,
) -> dict[str, tuple[float, list[float]]]:
    """Each case n calls, measured in `rounds` alternating slices (A B C, A B C, ...), so a baseline and the cases
    compared with it see the same background load on a shared machine. call(i) gets a distinct i in 0..n-1.
    With server_pid, server_cpu[name] is filled with the server's CPU seconds per call of each case; client_cpu with
    this process's (the load generator's)."""
    per = n // rounds
    elapsed = dict.fromkeys(calls, 0.0)
    cpu = dict.fromkeys(calls, 0.0)
    own = dict.fromkeys(calls, 0.0)
    latencies: dict[str, list[float]] = {name: [] for name in calls}
    for r in range(rounds):
        for name, call in calls.items():
            offset = r * per
            before, own_before = cpu_seconds(server_pid) if server_pid is not None else 0.0, time.process_time()
            rate, lat = await run_load(per, concurrency, lambda i, c=call, o=offset: c(i + o))
            own[name] += time.process_time() - own_before
            if server_pid is not None:
                cpu[name] += cpu_seconds(server_pid) - before
            elapsed[name] += per / rate
            latencies[name].extend(lat)
    if server_cpu is not None:
        server_cpu.update({name: spent / (per * rounds) for name, spent in cpu.items()})
    if client_cpu is not None:
        client_cpu.update({name: spent / (per * rounds) for name, spent in own.items()})
    return {name: (per * rounds / elapsed[name], latencies[name]) for name in calls}
