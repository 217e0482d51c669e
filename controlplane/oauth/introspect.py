"""POST /v1/oauth/introspect (RFC 7662): the HTTP face of controlplane.oauth.introspection."""

from __future__ import annotations

import time

from aiohttp import web

from controlplane.oauth.errors import NO_STORE, OAuthError
from controlplane.oauth.introspection import introspect_token
from controlplane.oauth.revoke import client_request


async def introspect(request: web.Request) -> web.Response:
    ctx, app, form, _ = await client_request(request, "introspect")
    if not app.confidential:  # before reading the token: a public client learns nothing from this endpoint
        raise OAuthError("invalid_client", "introspection requires a confidential client", status=401)
    token = form.get("token")
    if not token:
        raise OAuthError("invalid_request", "token is required")
    return web.json_response(await introspect_token(ctx, app, token, time.time()), headers=NO_STORE)
