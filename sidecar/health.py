"""Loopback HTTP for operators: /healthz (process alive), /readyz (keys loaded), /metrics (Prometheus)."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from sidecar.metrics import SidecarMetrics


def health_app(metrics: SidecarMetrics, readiness: Callable[[], dict[str, bool]]) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        issuers = readiness()
        ready = bool(issuers) and all(issuers.values())
        return web.json_response(
            {"status": "ready" if ready else "not_ready", "issuers": issuers}, status=200 if ready else 503
        )

    async def prometheus(_: web.Request) -> web.Response:
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", prometheus)
    return app
