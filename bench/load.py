"""The closed-loop load generator every benchmark uses: n calls, `concurrency` in flight, latencies recorded."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


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
    n: int, concurrency: int, calls: dict[str, Callable[[int], Awaitable[object]]], rounds: int = 4
) -> dict[str, tuple[float, list[float]]]:
    """Each case n calls, measured in `rounds` alternating slices (A B C, A B C, ...), so a baseline and the cases
    compared with it see the same background load on a shared machine. call(i) gets a distinct i in 0..n-1."""
    per = n // rounds
    elapsed = dict.fromkeys(calls, 0.0)
    latencies: dict[str, list[float]] = {name: [] for name in calls}
    for r in range(rounds):
        for name, call in calls.items():
            offset = r * per
            rate, lat = await run_load(per, concurrency, lambda i, c=call, o=offset: c(i + o))
            elapsed[name] += per / rate
            latencies[name].extend(lat)
    return {name: (per * rounds / elapsed[name], latencies[name]) for name in calls}
