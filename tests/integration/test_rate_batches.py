"""Shared rate limits decided in batches (issue 17): on PostgreSQL the takes waiting on a replica go to the database
in one statement. The budget must be exactly that of the same takes one after another: per bucket, as many pass as
there were whole tokens, the first ones in arrival order, every other one told when to come back. Generated mixes of
buckets, bursts and numbers of concurrent takes, against a real PostgreSQL, with a rate so small that no token
refills during a case."""

from __future__ import annotations

import asyncio
import secrets

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controlplane.store.db import PostgresDatabase, open_database
from controlplane.store.migrations import migrate
from controlplane.store.rate_limits import PostgresRateBuckets
from tests.support.postgres import PostgresCluster

SLOW = 1e-6  # tokens per second: nothing refills while a case runs

CASES = st.lists(st.tuples(st.integers(1, 4), st.integers(0, 9)), min_size=1, max_size=5)  # (burst, takes)


async def _decide(url: str, cases: list[tuple[int, int]], rounds: int) -> list[list[list[int | None]]]:
    db = await open_database(url)
    assert isinstance(db, PostgresDatabase)
    await migrate(db)
    buckets = PostgresRateBuckets(db, longest_refill_seconds=60)
    names = [f"case:{secrets.token_hex(6)}" for _ in cases]
    out = []
    for _ in range(rounds):  # a second round sees the buckets as the first left them
        takes = [(name, burst) for name, (burst, n) in zip(names, cases, strict=True) for _ in range(n)]
        answers = await asyncio.gather(*(buckets.take(name, SLOW, burst) for name, burst in takes))
        per_case: list[list[int | None]] = [[] for _ in cases]
        for (name, _), answer in zip(takes, answers, strict=True):
            per_case[names.index(name)].append(answer)
        out.append(per_case)
    await db.close()
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cases=CASES)
def test_a_batch_spends_exactly_the_tokens_single_takes_would(
    postgres: PostgresCluster, cases: list[tuple[int, int]]
) -> None:
    first, second = asyncio.run(_decide(postgres.new_database(), cases, rounds=2))
    for (burst, n), answers, again in zip(cases, first, second, strict=True):
        passed = min(n, burst)
        assert answers[:passed] == [None] * passed  # the first in arrival order pass
        assert all(isinstance(a, int) and a >= 1 for a in answers[passed:])  # the others get a Retry-After
        left = burst - passed
        assert again[: min(n, left)] == [None] * min(n, left)  # nothing was spent twice, nothing given twice
        assert all(isinstance(a, int) and a >= 1 for a in again[min(n, left) :])
