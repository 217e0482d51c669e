"""Per-tenant quotas: a token bucket per (plan, tenant), in memory for one gateway or in PostgreSQL so that every
replica shares the same budget. Whatever the store, a failure to decide is an error the caller turns into 503:
a quota check never lets a request through because it could not count it.
"""

from __future__ import annotations

import logging
import math
from typing import Protocol

import asyncpg
from asyncpg.exceptions import InterfaceError, PostgresError

from coresdk.config.gateway import Plan
from coresdk.errors import Unavailable
from coresdk.ratelimit import RateLimiter

log = logging.getLogger("coresdk.gateway.quota")
QUOTA_UNAVAILABLE = "QUOTA_STORE_UNAVAILABLE"


class QuotaStore(Protocol):
    async def take(self, plan: Plan, tenant_id: str) -> int | None:
        """None when the request fits the plan, else seconds until it would (Retry-After)."""
        ...

    async def close(self) -> None: ...


class MemoryQuota:
    def __init__(self, plans: dict[str, Plan]) -> None:
        self._limiters = {name: RateLimiter(p.requests_per_minute / 60.0, p.burst) for name, p in plans.items()}

    async def take(self, plan: Plan, tenant_id: str) -> int | None:
        return self._limiters[plan.name].take(tenant_id)

    async def close(self) -> None:
        return None


_SCHEMA = """
CREATE TABLE IF NOT EXISTS gateway_quota (
    bucket TEXT PRIMARY KEY,
    tokens DOUBLE PRECISION NOT NULL,
    updated TIMESTAMPTZ NOT NULL
)
"""
# One statement: refill by elapsed time, then take a token only if one is there. Concurrent gateways serialise on
# the row lock, so two replicas can never spend the same token.
_TAKE = """
INSERT INTO gateway_quota AS q (bucket, tokens, updated) VALUES ($1, $2 - 1, clock_timestamp())
ON CONFLICT (bucket) DO UPDATE SET
    tokens = LEAST($2, q.tokens + EXTRACT(EPOCH FROM clock_timestamp() - q.updated) * $3) - 1,
    updated = clock_timestamp()
WHERE LEAST($2, q.tokens + EXTRACT(EPOCH FROM clock_timestamp() - q.updated) * $3) >= 1
RETURNING tokens
"""
_LEVEL = """
SELECT LEAST($2, tokens + EXTRACT(EPOCH FROM clock_timestamp() - updated) * $3) FROM gateway_quota WHERE bucket = $1
"""


class PostgresQuota:
    def __init__(self, dsn: str, timeout_seconds: float = 2.0) -> None:
        self._dsn = dsn
        self._timeout = timeout_seconds
        self._pool: asyncpg.Pool | None = None

    async def _connect(self) -> asyncpg.Pool:
        try:
            pool = await asyncpg.create_pool(self._dsn, min_size=1, max_size=8, timeout=self._timeout)
            async with pool.acquire() as conn:
                await conn.execute(_SCHEMA)
        except (OSError, TimeoutError, PostgresError, InterfaceError) as exc:
            raise Unavailable(QUOTA_UNAVAILABLE, f"the quota store is unreachable: {type(exc).__name__}") from None
        self._pool = pool
        return pool

    async def start(self) -> None:
        """Connect early so a wrong DSN shows in the log at start; an outage now only means 503s until it heals."""
        try:
            await self._connect()
        except Unavailable as err:
            log.error("quota store: %s", err)

    async def take(self, plan: Plan, tenant_id: str) -> int | None:
        pool = self._pool or await self._connect()
        rate = plan.requests_per_minute / 60.0
        bucket = f"{plan.name}:{tenant_id}"
        try:
            async with pool.acquire(timeout=self._timeout) as conn:
                taken = await conn.fetchval(_TAKE, bucket, float(plan.burst), rate, timeout=self._timeout)
                if taken is not None:
                    return None
                level = await conn.fetchval(_LEVEL, bucket, float(plan.burst), rate, timeout=self._timeout)
        except (OSError, TimeoutError, PostgresError, InterfaceError) as exc:
            raise Unavailable(QUOTA_UNAVAILABLE, f"the quota store failed: {type(exc).__name__}") from None
        return max(1, math.ceil((1.0 - float(level or 0.0)) / rate))

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
