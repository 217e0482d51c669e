"""Applying the rate limiters at an endpoint: 429 with Retry-After, counted in metrics.

The buckets are shared by every replica on PostgreSQL (controlplane.store.rate_limits), so a limit does not grow
with the number of replicas; a store that cannot decide is a 503, never a pass.
"""

from __future__ import annotations

import asyncio

from controlplane.oauth.context import Context
from controlplane.oauth.errors import OAuthError


async def limit_ip(ctx: Context, endpoint: str, ip: str) -> None:
    wait = await ctx.ip_limiter.take(f"{endpoint}:{ip}")
    if wait is not None:
        ctx.metrics.rate_limited.labels(endpoint, "ip").inc()
        raise OAuthError("slow_down", "too many requests from this address", 429, {"Retry-After": str(wait)})


async def limit_client(ctx: Context, endpoint: str, client_id: str) -> None:
    wait = await ctx.client_limiter.take(f"{endpoint}:{client_id}")
    if wait is not None:
        ctx.metrics.rate_limited.labels(endpoint, "client").inc()
        raise OAuthError("slow_down", "too many requests for this client", 429, {"Retry-After": str(wait)})


MAX_LOGIN_DELAY = 2.0


async def slow_busy_subject(ctx: Context, subject: str) -> None:
    """Past the per-subject budget (all addresses together) each attempt waits, up to 2 s, but is never refused:
    a refusal here would let anyone lock a user out by guessing from many addresses; a delay only slows guessing."""
    if ctx.login_user_limiter is None:
        return
    wait = await ctx.login_user_limiter.take(subject)
    if wait is not None:
        ctx.metrics.rate_limited.labels("login", "user_slowed").inc()
        await asyncio.sleep(min(MAX_LOGIN_DELAY, float(wait)))
