"""Token buckets for the control plane's rate limits: in the database on PostgreSQL, so that every replica spends
from one budget, and in memory on SQLite (one node by definition).

On PostgreSQL the decisions waiting on a replica are made together, in one statement: refill by the elapsed
database time, give as many of the takes as there are whole tokens, and remember how many, all under the row lock,
so two replicas can never spend the same token (and a token request pays a share of one round trip, not its own). When the
database cannot answer the caller gets StoreUnavailable (503): a limit never lets a request through because it
could not count it.
"""

from __future__ import annotations

import math
from typing import Protocol

from controlplane.store.db import Database, PostgresDatabase
from controlplane.store.group_commit import Batcher
from coresdk.ratelimit import RateLimiter


class RateBuckets(Protocol):
    shared: bool  # True where every replica reads the same buckets

    async def take(self, bucket: str, rate_per_second: float, burst: int) -> int | None:
        """None when a token was taken, else whole seconds until one will be there (Retry-After)."""
        ...

    async def prune(self) -> int:
        """Forget buckets that have refilled completely (they hold no information); return how many."""
        ...


class MemoryRateBuckets:
    shared = False

    def __init__(self) -> None:
        self._limiters: dict[tuple[float, int], RateLimiter] = {}

    async def take(self, bucket: str, rate_per_second: float, burst: int) -> int | None:
        limiter = self._limiters.get((rate_per_second, burst))
        if limiter is None:
            limiter = self._limiters[(rate_per_second, burst)] = RateLimiter(rate_per_second, burst)
        return limiter.take(bucket)

    async def prune(self) -> int:
        return 0  # the in-memory limiter bounds its own size


# Many decisions in one statement: every concurrent take waiting on this replica, one row per bucket with the
# number of takes `n` asking it. Under the row lock the bucket refills by the elapsed database time and gives
# min(n, whole tokens there) of them; `allowed` keeps that count. The first that many takes of the batch (in
# arrival order) are let through, the rest are told when the next token will be there: the same budget as n single
# takes in a row, in one round trip instead of n.
_TAKE_MANY = """
WITH req AS (
    SELECT * FROM unnest($1::text[], $2::float8[], $3::float8[], $4::int[]) AS r(bucket, burst, rate, n)
)
INSERT INTO rate_buckets AS b (bucket, tokens, updated, allowed)
SELECT bucket, burst - LEAST(n, floor(burst)), EXTRACT(EPOCH FROM statement_timestamp()), LEAST(n, floor(burst))
FROM req
ON CONFLICT (bucket) DO UPDATE SET
    tokens = (SELECT LEAST(r.burst, b.tokens + GREATEST(0.0, EXTRACT(EPOCH FROM statement_timestamp()) - b.updated) * r.rate)
              - LEAST(r.n, floor(LEAST(r.burst, b.tokens + GREATEST(0.0, EXTRACT(EPOCH FROM statement_timestamp()) - b.updated) * r.rate)))
              FROM req r WHERE r.bucket = b.bucket),
    updated = EXTRACT(EPOCH FROM statement_timestamp()),
    allowed = (SELECT LEAST(r.n, floor(LEAST(r.burst, b.tokens + GREATEST(0.0, EXTRACT(EPOCH FROM statement_timestamp()) - b.updated) * r.rate)))
               FROM req r WHERE r.bucket = b.bucket)
RETURNING bucket, tokens, allowed
"""
# A bucket untouched for longer than it takes to refill from empty is full again: the row can go.
_PRUNE = "DELETE FROM rate_buckets WHERE updated < EXTRACT(EPOCH FROM statement_timestamp()) - $1"


class PostgresRateBuckets:
    shared = True

    def __init__(self, db: PostgresDatabase, longest_refill_seconds: float) -> None:
        self._db = db
        self._longest_refill = longest_refill_seconds
        self._takes: Batcher[tuple[str, float, int], int | None] = Batcher(self._decide)

    async def take(self, bucket: str, rate_per_second: float, burst: int) -> int | None:
        return await self._takes.submit((bucket, rate_per_second, burst))

    async def _decide(self, batch: list[tuple[str, float, int]]) -> list[int | None]:
        """The takes that arrived while the previous statement was out, decided in one statement."""
        asked: dict[str, list[float]] = {}  # bucket -> [burst, rate, takes]
        for bucket, rate, burst in batch:
            entry = asked.setdefault(bucket, [float(burst), float(rate), 0.0])
            entry[2] += 1
        buckets = list(asked)
        rows = await self._db.statement(
            _TAKE_MANY,
            buckets,
            [asked[b][0] for b in buckets],
            [asked[b][1] for b in buckets],
            [int(asked[b][2]) for b in buckets],
        )
        granted = {str(r["bucket"]): int(r["allowed"]) for r in rows}
        level = {str(r["bucket"]): float(r["tokens"]) for r in rows}
        answers: list[int | None] = []
        for bucket, rate, _burst in batch:
            if granted[bucket] > 0:
                granted[bucket] -= 1
                answers.append(None)
            else:
                answers.append(max(1, math.ceil((1.0 - level[bucket]) / rate)))
        return answers

    async def prune(self) -> int:
        async with self._db.transaction() as tx:
            pruned: int = await tx.execute(_PRUNE, self._longest_refill)
        return pruned


def rate_buckets(db: Database, longest_refill_seconds: float) -> RateBuckets:
    if isinstance(db, PostgresDatabase):
        return PostgresRateBuckets(db, longest_refill_seconds)
    return MemoryRateBuckets()
