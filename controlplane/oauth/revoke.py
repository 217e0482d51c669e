"""POST /v1/oauth/revoke (RFC 7009) and POST /v1/oauth/logout: the HTTP face of controlplane.oauth.revocation."""

from __future__ import annotations

import time

from aiohttp import web

from controlplane.http import client_ip, oauth_form
from controlplane.oauth.clients import authenticate_client
from controlplane.oauth.context import Context
from controlplane.oauth.errors import NO_STORE, OAuthError
from controlplane.oauth.limits import limit_client, limit_ip
from controlplane.oauth.revocation import TOKEN_TYPE_HINTS, revoke_token
from controlplane.store.models import OAuthApp


async def client_request(request: web.Request, endpoint: str) -> tuple[Context, OAuthApp, dict[str, str], str]:
    ctx: Context = request.app["ctx"]
    ip = client_ip(request)
    await limit_ip(ctx, endpoint, ip)
    form = await oauth_form(request, ctx.config.max_body_bytes)
    app = await authenticate_client(request, form, ctx.store, ctx.server_keys)
    await limit_client(ctx, endpoint, app.client_id)
    return ctx, app, form, ip


async def revoke(request: web.Request) -> web.Response:
    ctx, app, form, ip = await client_request(request, "revoke")
    token = form.get("token")
    if not token:
        raise OAuthError("invalid_request", "token is required")
    hint = form.get("token_type_hint")
    if hint is not None and hint not in TOKEN_TYPE_HINTS:
        raise OAuthError("unsupported_token_type", f"token_type_hint must be one of {', '.join(TOKEN_TYPE_HINTS)}")
    await revoke_token(ctx, app, token, hint, time.time(), ip)
    return web.Response(status=200, headers=NO_STORE)


async def logout(request: web.Request) -> web.Response:
    """Revoke the session's refresh token (its family) and access token in one call."""
    ctx, app, form, ip = await client_request(request, "revoke")
    tokens = [(form.get("refresh_token"), "refresh_token"), (form.get("access_token"), "access_token")]
    if not any(t for t, _ in tokens):
        raise OAuthError("invalid_request", "refresh_token and/or access_token is required")
    for token, hint in tokens:
        if token:
            await revoke_token(ctx, app, token, hint, time.time(), ip)
    return web.Response(status=200, headers=NO_STORE)
