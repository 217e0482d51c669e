"""Control plane wiring (aiohttp). Today: health and the published signing keys; the OAuth server builds on this."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Mapping

from aiohttp import web

from controlplane.keys.signing import SigningKey, jwks_document, load_signing_key
from coresdk.config.controlplane import ControlPlaneConfig, load_controlplane_config
from coresdk.config.env import split_host_port
from coresdk.errors import ConfigError

log = logging.getLogger("coresdk.controlplane")
JWKS_MAX_AGE = 300


def build_app(config: ControlPlaneConfig, keys: list[SigningKey]) -> web.Application:
    document = jwks_document(keys)

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def jwks(_: web.Request) -> web.Response:
        return web.json_response(
            document,
            content_type="application/jwk-set+json",
            headers={"Cache-Control": f"public, max-age={JWKS_MAX_AGE}"},
        )

    async def not_found(request: web.Request) -> web.Response:
        return web.json_response({"error": "not_found", "error_description": "no such endpoint"}, status=404)

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/api/v1/jwks", jwks)
    app.router.add_get("/.well-known/jwks.json", jwks)
    app.router.add_route("*", "/{tail:.*}", not_found)
    return app


async def serve(config: ControlPlaneConfig) -> None:
    key = load_signing_key(config.signing_key_path, generate_if_missing=config.development)
    runner = web.AppRunner(build_app(config, [key]), access_log=None)
    await runner.setup()
    host, port = split_host_port(config.addr, "CORESDK_CP_ADDR")
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise ConfigError("CORESDK_CP_ADDR", f"cannot listen on {config.addr}: {exc}") from None
    log.info("control plane listening addr=%s issuer=%s kid=%s env=%s", config.addr, config.issuer, key.kid, config.env)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
    log.info("control plane stopped")


def main(environ: Mapping[str, str] | None = None) -> int:
    environ = os.environ if environ is None else environ
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stderr)
    try:
        asyncio.run(serve(load_controlplane_config(environ)))
    except ConfigError as exc:
        print(f"coresdk controlplane: configuration error: {exc}", file=sys.stderr)
        return 2
    return 0
