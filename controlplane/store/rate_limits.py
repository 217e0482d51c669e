"""Token buckets for the control plane's rate limits: in the database on PostgreSQL, so that every replica spends
from one budget, and in memory on SQLite (one node by definition).

On PostgreSQL a decision is one statement: refill by the elapsed database time, take a token if one is there, and
remember whether it was taken, all under the row lock, so two replicas can never spend the same token. When the
database cannot answer the caller gets StoreUnavailable (503): a limit never lets a request through because it
could not count it.
"""

from __future__ import annotations

import math
from typing import Protocol

from controlplane.store.db import Database, PostgresDatabase
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


# The level after refill is written out in full each time (SET cannot name it); every use sees the same row and
# the same statement time, so the three agree.
_TAKE = """
INSERT INTO rate_buckets AS b (bucket, tokens, updated, allowed)
VALUES ($1, $2 - 1, EXTRACT(EPOCH FROM statement_timestamp()), 1)
ON CONFLICT (bucket) DO UPDATE SET
    tokens = CASE WHEN LEAST($2, b.tokens + GREATEST(0.0, EXTRACT(EPOCH FROM statement_timestamp()) - b.updated) * $3) >= 1
        THEN LEAST($2, b.tokens + GREATEST(0.0, EXTRACT(EPOCH FROM statement_timestamp()) - b.updated) * $3) - 1
        ELSE LEAST($2, b.tokens + GREATEST(0.0, EXTRACT(EPOCH FROM statement_timestamp()) - b.updated) * $3) END,
    updated = EXTRACT(EPOCH FROM statement_timestamp()),
    allowed = CASE WHEN LEAST($2, b.tokens + GREATEST(0.0, EXTRACT(EPOCH FROM statement_timestamp()) - b.updated) * $3) >= 1 THEN 1 ELSE 0 END
RETURNING tokens, allowed
"""
# A bucket untouched for longer than it takes to refill from empty is full again: the row can go.
_PRUNE = "DELETE FROM rate_buckets WHERE updated < EXTRACT(EPOCH FROM statement_timestamp()) - $1"


class PostgresRateBuckets:
    shared = True

    def __init__(self, db: PostgresDatabase, longest_refill_seconds: float) -> None:
        self._db = db
        self._longest_refill = longest_refill_seconds

    async def take(self, bucket: str, rate_per_second: float, burst: int) -> int | None:
        row = await self._db.fetchrow(_TAKE, bucket, float(burst), float(rate_per_second))
        assert row is not None  # an upsert always returns its row
        if int(row["allowed"]):
            return None
        return max(1, math.ceil((1.0 - float(row["tokens"])) / rate_per_second))

    async def prune(self) -> int:
        async with self._db.transaction() as tx:
            pruned: int = await tx.execute(_PRUNE, self._longest_refill)
        return pruned


def rate_buckets(db: Database, longest_refill_seconds: float) -> RateBuckets:
    if isinstance(db, PostgresDatabase):
        return PostgresRateBuckets(db, longest_refill_seconds)
    return MemoryRateBuckets()
