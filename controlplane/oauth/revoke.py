"""POST /v1/oauth/revoke (RFC 7009) and POST /v1/oauth/logout.

A refresh token revokes its whole family (and every access token of it); an access token's jti joins the
revocation list that sidecars poll. Unknown or foreign tokens get 200 as the RFC requires — nothing is revealed.
"""

from __future__ import annotations

import time

from aiohttp import web

from controlplane.http import client_ip, oauth_form
from controlplane.oauth.clients import authenticate_client
from controlplane.oauth.context import Context
from controlplane.oauth.errors import NO_STORE, OAuthError
from controlplane.oauth.limits import limit_client, limit_ip
from controlplane.oauth.tokens_lookup import find_access, find_refresh
from controlplane.store.models import OAuthApp

_HINTS = ("access_token", "refresh_token")


async def _revoke_one(ctx: Context, app: OAuthApp, token: str, hint: str | None, ip: str) -> None:
    order = ("refresh_token", "access_token") if hint != "access_token" else ("access_token", "refresh_token")
    for kind in order:
        if kind == "refresh_token":
            found = await find_refresh(ctx, token)
            if found is not None:
                if found.family.client_id == app.client_id and found.family.revoked_at is None:
                    await ctx.store.revoke_family(found.family.id, "revoked", time.time(), app.client_id, ip)
                return
        else:
            access = await find_access(ctx, token)
            if access is not None:
                if access.record.client_id == app.client_id:
                    if access.record.family_id:
                        await ctx.store.revoke_family(
                            access.record.family_id, "revoked", time.time(), app.client_id, ip
                        )
                    await ctx.store.revoke_access(access.record, time.time(), ip)
                return


async def client_request(request: web.Request, endpoint: str) -> tuple[Context, OAuthApp, dict[str, str], str]:
    ctx: Context = request.app["ctx"]
    ip = client_ip(request)
    limit_ip(ctx, endpoint, ip)
    form = await oauth_form(request, ctx.config.max_body_bytes)
    app = await authenticate_client(request, form, ctx.store, ctx.server_keys)
    limit_client(ctx, endpoint, app.client_id)
    return ctx, app, form, ip


async def revoke(request: web.Request) -> web.Response:
    ctx, app, form, ip = await client_request(request, "revoke")
    token = form.get("token")
    if not token:
        raise OAuthError("invalid_request", "token is required")
    hint = form.get("token_type_hint")
    if hint is not None and hint not in _HINTS:
        raise OAuthError("unsupported_token_type", f"token_type_hint must be one of {', '.join(_HINTS)}")
    await _revoke_one(ctx, app, token, hint, ip)
    return web.Response(status=200, headers=NO_STORE)


async def logout(request: web.Request) -> web.Response:
    """Revoke the session's refresh token (its family) and access token in one call."""
    ctx, app, form, ip = await client_request(request, "revoke")
    tokens = [(form.get("refresh_token"), "refresh_token"), (form.get("access_token"), "access_token")]
    if not any(t for t, _ in tokens):
        raise OAuthError("invalid_request", "refresh_token and/or access_token is required")
    for token, hint in tokens:
        if token:
            await _revoke_one(ctx, app, token, hint, ip)
    return web.Response(status=200, headers=NO_STORE)
