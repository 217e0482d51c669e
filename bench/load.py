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
