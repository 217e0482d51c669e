"""Loopback HTTP for operators: /healthz (process alive), /readyz (keys, revocation feed and audit journal ready),
/metrics (Prometheus)."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from coresdk.metrics import EngineMetrics

SUBSYSTEMS = ("revocations", "audit")


def health_app(metrics: EngineMetrics, readiness: Callable[[], dict[str, bool]]) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        checks = readiness()
        ready = bool(checks) and all(checks.values())
        issuers = {k: v for k, v in checks.items() if k not in SUBSYSTEMS}
        return web.json_response(
            {"status": "ready" if ready else "not_ready", "checks": checks, "issuers": issuers},
            status=200 if ready else 503,
        )

    async def prometheus(_: web.Request) -> web.Response:
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", prometheus)
    return app
