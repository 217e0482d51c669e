"""GET /api/v1/replica (admin): what this replica believes about the state it must share with the others, so that
`coresdk doctor` can compare replicas: the key it signs with and the kids it publishes, where its rate-limit buckets
live, and which replica holds the background work."""

from __future__ import annotations

import time

from aiohttp import web

from controlplane.admin.api import require_admin
from controlplane.oauth.context import Context
from controlplane.store.leader import current_leader


async def replica(request: web.Request) -> web.Response:
    require_admin(request)
    ctx: Context = request.app["ctx"]
    now = time.time()
    leadership = ctx.leadership
    return web.json_response(
        {
            "replica": leadership.identity if leadership is not None else "single-node",
            "store": ctx.store.db.dialect,
            "active_kid": ctx.keys.signing_key(now).kid,
            "jwks_kids": sorted(k.kid for k in ctx.keys.public_keys(now)),
            "rate_limits": "database" if ctx.buckets.shared else "memory",
            "leading": bool(leadership is None or leadership.leading),
            "leader": await current_leader(ctx.store.db),
        },
        headers={"Cache-Control": "no-store"},
    )


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/api/v1/replica", replica)
