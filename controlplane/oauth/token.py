"""POST /v1/oauth/token (RFC 6749 §3.2): client authentication, then the grant's own module decides.

The rules live in controlplane.oauth.grants (authorization_code, refresh_token, client_credentials); this handler
reads the form, authenticates the client, checks that it may use the grant, and shapes the HTTP response.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from controlplane.http import client_ip, oauth_form
from controlplane.oauth.clients import authenticate_client
from controlplane.oauth.context import Context
from controlplane.oauth.errors import NO_STORE, OAuthError
from controlplane.oauth.grants.authorization_code import CodeRedemption, redeem_code
from controlplane.oauth.grants.client_credentials import issue_client_token
from controlplane.oauth.grants.refresh_token import rotate_refresh
from controlplane.oauth.limits import limit_client, limit_ip
from controlplane.oauth.server_metadata import GRANT_TYPES
from controlplane.store.models import OAuthApp

REFRESH_COOKIE = "coresdk_refresh"
TOKEN_PATH = "/v1/oauth/token"  # noqa: S105 - a URL path


def _respond(ctx: Context, app: OAuthApp, body: dict[str, Any]) -> web.Response:
    """Browser apps get the refresh token only as an HttpOnly cookie scoped to the token path, never in the body."""
    cookie = body.pop("refresh_token", None) if app.refresh_in_cookie else None
    response = web.json_response(body, headers=NO_STORE)
    if cookie is not None:
        response.set_cookie(
            REFRESH_COOKIE,
            cookie,
            max_age=ctx.config.refresh_idle_ttl,
            path=TOKEN_PATH,
            secure=True,
            httponly=True,
            samesite="Lax",
        )
    return response


async def _grant(
    ctx: Context, grant: str, app: OAuthApp, form: dict[str, str], ip: str, request: web.Request
) -> dict[str, Any]:
    if grant == "authorization_code":
        return await redeem_code(ctx, app, CodeRedemption.from_form(form), time.time(), ip)
    if grant == "client_credentials":
        return await issue_client_token(ctx, app, form.get("scope"), time.time(), ip)
    presented = form.get("refresh_token") or (request.cookies.get(REFRESH_COOKIE) if app.refresh_in_cookie else None)
    if not presented:
        raise OAuthError("invalid_request", "refresh_token is required")
    return await rotate_refresh(ctx, app, presented, form.get("scope"), time.time(), ip)


async def token_endpoint(request: web.Request) -> web.Response:
    ctx: Context = request.app["ctx"]
    ip = client_ip(request)
    await limit_ip(ctx, "token", ip)
    form = await oauth_form(request, ctx.config.max_body_bytes)
    app = await authenticate_client(request, form, ctx.store, ctx.server_keys)
    await limit_client(ctx, "token", app.client_id)
    grant = form.get("grant_type")
    if not grant:
        raise OAuthError("invalid_request", "grant_type is required")
    if grant not in GRANT_TYPES:
        raise OAuthError("unsupported_grant_type", f"grant_type {grant!r} is not supported")
    if grant not in app.grant_types:
        raise OAuthError("unauthorized_client", f"this client may not use {grant}")
    try:
        body = await _grant(ctx, grant, app, form, ip, request)
    except OAuthError as err:
        ctx.metrics.tokens.labels(grant, err.error).inc()
        raise
    ctx.metrics.tokens.labels(grant, "ok").inc()
    return _respond(ctx, app, body)
