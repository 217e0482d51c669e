"""GET /.well-known/oauth-authorization-server (RFC 8414, built by controlplane.oauth.server_metadata) and the JWKS."""

from __future__ import annotations

import time

from aiohttp import web

from controlplane.keys.signing import jwks_document
from controlplane.oauth.context import Context
from controlplane.oauth.server_metadata import authorization_server_metadata
from coresdk.config.controlplane import JWKS_MAX_AGE


async def metadata(request: web.Request) -> web.Response:
    ctx: Context = request.app["ctx"]
    body = authorization_server_metadata(ctx.config.issuer)
    return web.json_response(body, headers={"Cache-Control": f"public, max-age={JWKS_MAX_AGE}"})


async def jwks(request: web.Request) -> web.Response:
    ctx: Context = request.app["ctx"]
    return web.json_response(
        jwks_document(ctx.keys.public_keys(time.time())),
        content_type="application/jwk-set+json",
        headers={"Cache-Control": f"public, max-age={JWKS_MAX_AGE}"},
    )
