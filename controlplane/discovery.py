"""RFC 8414 authorization server metadata and the JWKS, both public."""

from __future__ import annotations

import time

from aiohttp import web

from controlplane.keys.signing import jwks_document
from controlplane.oauth.context import Context

JWKS_MAX_AGE = 300


async def metadata(request: web.Request) -> web.Response:
    ctx: Context = request.app["ctx"]
    base = ctx.config.issuer.rstrip("/")
    auth_methods = ["client_secret_basic", "client_secret_post", "none"]
    body = {
        "issuer": ctx.config.issuer,
        "authorization_endpoint": f"{base}/v1/oauth/authorize",
        "token_endpoint": f"{base}/v1/oauth/token",
        "revocation_endpoint": f"{base}/v1/oauth/revoke",
        "introspection_endpoint": f"{base}/v1/oauth/introspect",
        "jwks_uri": f"{base}/api/v1/jwks",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "authorization_response_iss_parameter_supported": True,
        "token_endpoint_auth_signing_alg_values_supported": ["RS256"],
    }
    return web.json_response(body, headers={"Cache-Control": f"public, max-age={JWKS_MAX_AGE}"})


async def jwks(request: web.Request) -> web.Response:
    ctx: Context = request.app["ctx"]
    return web.json_response(
        jwks_document(ctx.keys.public_keys(time.time())),
        content_type="application/jwk-set+json",
        headers={"Cache-Control": f"public, max-age={JWKS_MAX_AGE}"},
    )
