"""POST /v1/oauth/token (RFC 6749 §3.2): authorization_code + PKCE, client_credentials, refresh_token rotation."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from controlplane.http import client_ip, oauth_form
from controlplane.oauth import pkce
from controlplane.oauth.clients import authenticate_client
from controlplane.oauth.context import Context
from controlplane.oauth.errors import NO_STORE, OAuthError
from controlplane.oauth.limits import limit_client, limit_ip
from controlplane.secrets import new_id
from controlplane.store.models import AccessRecord, AuthCode, OAuthApp, RefreshRecord, TokenFamily
from controlplane.store.store import Rotation

REFRESH_COOKIE = "coresdk_refresh"
TOKEN_PATH = "/v1/oauth/token"  # noqa: S105 - a URL path


def requested_scopes(form: dict[str, str], allowed: tuple[str, ...]) -> tuple[str, ...]:
    """The scope parameter as a subset of allowed (default: all of allowed); never more."""
    if "scope" not in form:
        return allowed
    wanted = tuple(dict.fromkeys(form["scope"].split()))
    if not wanted:
        return allowed
    extra = [s for s in wanted if s not in allowed]
    if extra:
        raise OAuthError("invalid_scope", f"scope exceeds what was granted: {' '.join(extra)}")
    return wanted


def still_allowed(granted: tuple[str, ...], app: OAuthApp) -> tuple[str, ...]:
    """The part of a grant the client may still hold: scopes withdrawn from the app since are gone for good.

    A refresh family (or a pending code) carries the scopes of its consent; the app's scopes are the ceiling an
    administrator sets now. A scope removed from the app must not live on in tokens minted from an older grant.
    """
    return tuple(s for s in granted if s in app.scopes)


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


async def _authorization_code(ctx: Context, app: OAuthApp, form: dict[str, str], ip: str) -> dict[str, Any]:
    for name in ("code", "redirect_uri", "code_verifier"):
        if name not in form:
            raise OAuthError("invalid_request", f"{name} is required")
    now = time.time()
    issued: dict[str, Any] = {}

    def accept(code: AuthCode) -> str | None:
        if code.client_id != app.client_id:
            return "the code was issued to another client"
        if code.redirect_uri != form["redirect_uri"]:
            return "redirect_uri does not match the authorization request"
        if now >= code.expires_at:
            return "the code has expired"
        if not pkce.verify(form["code_verifier"], code.code_challenge):
            return "PKCE verification failed"
        if not still_allowed(code.scopes, app):
            return "none of the scopes of this code is still allowed for this client"
        return None

    def issue(code: AuthCode) -> tuple[TokenFamily, RefreshRecord | None, AccessRecord]:
        family = TokenFamily(
            id=new_id("fam"),
            client_id=app.client_id,
            subject=code.subject,
            tenant_id=code.tenant_id,
            roles=code.roles,
            scopes=still_allowed(code.scopes, app),
            created_at=now,
            absolute_expires_at=now + ctx.config.refresh_absolute_ttl,
        )
        access = ctx.issuer.for_family(family, now)
        refresh_raw, refresh = (None, None)
        if "refresh_token" in app.grant_types:
            refresh_raw, refresh = ctx.issuer.refresh(family, now)
        issued["body"] = ctx.issuer.response(access, refresh_raw)
        return family, refresh, access.record

    outcome, _ = await ctx.store.redeem_code(ctx.server_keys.hash_token(form["code"]), now, accept, issue, ip)
    if outcome == "issued":
        return dict(issued["body"])
    if outcome == "replay":
        raise OAuthError("invalid_grant", "authorization code was already used; tokens issued from it are revoked")
    if outcome == "unknown":
        raise OAuthError("invalid_grant", "authorization code is invalid")
    raise OAuthError("invalid_grant", outcome)


async def _client_credentials(ctx: Context, app: OAuthApp, form: dict[str, str], ip: str) -> dict[str, Any]:
    if not app.confidential:
        raise OAuthError("unauthorized_client", "client_credentials requires a confidential client")
    scopes = requested_scopes(form, app.scopes)
    now = time.time()
    access = await ctx.issuer.access_async(
        client_id=app.client_id,
        subject=app.client_id,
        scopes=scopes,
        tenant_id=app.tenant_id,
        roles=(),
        family_id=None,
        now=now,
    )
    await ctx.store.record_access(access.record, ip, "client_credentials")
    return ctx.issuer.response(access, None)


async def _refresh_token(
    ctx: Context, app: OAuthApp, form: dict[str, str], ip: str, request: web.Request
) -> dict[str, Any]:
    presented = form.get("refresh_token") or (request.cookies.get(REFRESH_COOKIE) if app.refresh_in_cookie else None)
    if not presented:
        raise OAuthError("invalid_request", "refresh_token is required")
    presented_hash = ctx.server_keys.hash_token(presented)
    narrowed: dict[str, tuple[str, ...]] = {}

    def successor(family: TokenFamily, now: float) -> tuple[RefreshRecord, AccessRecord, str]:
        remaining = still_allowed(family.scopes, app)
        if not remaining:  # raised inside the rotation's transaction: nothing is consumed or issued
            raise OAuthError("invalid_grant", "none of the scopes of this grant is still allowed for this client")
        scopes = requested_scopes(form, remaining)
        narrowed["scopes"] = scopes
        access = ctx.issuer.for_family(family, now, scopes)
        raw, record = ctx.issuer.refresh(family, now)
        body = ctx.issuer.response(access, raw)
        return record, access.record, ctx.issuer.seal_response(body, presented_hash)

    result = await ctx.store.rotate_refresh(
        presented_hash, app.client_id, time.time(), ctx.config.refresh_grace_seconds, successor, ip
    )
    if result.outcome in (Rotation.ROTATED, Rotation.GRACE) and result.blob is not None:
        return ctx.issuer.open_response(result.blob, presented_hash)
    raise OAuthError("invalid_grant", result.reason or "refresh token is invalid")


async def token_endpoint(request: web.Request) -> web.Response:
    ctx: Context = request.app["ctx"]
    ip = client_ip(request)
    limit_ip(ctx, "token", ip)
    form = await oauth_form(request, ctx.config.max_body_bytes)
    app = await authenticate_client(request, form, ctx.store, ctx.server_keys)
    limit_client(ctx, "token", app.client_id)
    grant = form.get("grant_type")
    if not grant:
        raise OAuthError("invalid_request", "grant_type is required")
    handlers = {"authorization_code", "client_credentials", "refresh_token"}
    if grant not in handlers:
        raise OAuthError("unsupported_grant_type", f"grant_type {grant!r} is not supported")
    if grant not in app.grant_types:
        raise OAuthError("unauthorized_client", f"this client may not use {grant}")
    try:
        if grant == "authorization_code":
            body = await _authorization_code(ctx, app, form, ip)
        elif grant == "client_credentials":
            body = await _client_credentials(ctx, app, form, ip)
        else:
            body = await _refresh_token(ctx, app, form, ip, request)
    except OAuthError as err:
        ctx.metrics.tokens.labels(grant, err.error).inc()
        raise
    ctx.metrics.tokens.labels(grant, "ok").inc()
    return _respond(ctx, app, body)
