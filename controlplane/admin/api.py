"""Admin API (bearer CPOD_ADMIN_TOKEN): OAuth apps, users, token events, signing keys.

A client secret is returned exactly once, at creation or rotation; afterwards only its age and expiry are visible.
"""

from __future__ import annotations

import datetime as dt
import hmac
import re
import time
from typing import Any

from aiohttp import web

from controlplane.admin.sidecar_auth import require_sidecar_or_admin
from controlplane.http import client_ip, json_object, query_params
from controlplane.oauth.apps import check_app_consistency, validate_app_fields
from controlplane.oauth.context import Context
from controlplane.oauth.errors import ApiError
from controlplane.oauth.grant_withdrawal import delete_app as withdraw_app
from controlplane.oauth.grant_withdrawal import delete_user as withdraw_user
from controlplane.oauth.grant_withdrawal import update_app
from controlplane.passwords import hash_password
from controlplane.secrets import new_id, new_token
from controlplane.store.models import ClientSecret, OAuthApp, User

APP_FIELDS = {"name", "client_type", "scopes", "redirect_uris", "grant_types", "refresh_in_cookie", "tenant_id"}
_SUBJECT = re.compile(r"[A-Za-z0-9._@+\-]{1,200}")
_ROLES = ("admin", "operator", "editor", "viewer")


def require_admin(request: web.Request, also: str | None = None) -> None:
    ctx: Context = request.app["ctx"]
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError(
            401, "unauthorized", "admin bearer token required", {"WWW-Authenticate": 'Bearer realm="coresdk-admin"'}
        )
    candidates = [ctx.config.admin_token] + ([also] if also else [])
    if not any(hmac.compare_digest(token.encode(), c.encode()) for c in candidates):
        raise ApiError(401, "unauthorized", "invalid admin token", {"WWW-Authenticate": 'Bearer error="invalid_token"'})


def _iso(ts: float | None) -> str | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC).isoformat().replace("+00:00", "Z")


async def _app_view(ctx: Context, app: OAuthApp) -> dict[str, Any]:
    now = time.time()
    secrets = [
        {
            "id": s.id,
            "created_at": _iso(s.created_at),
            "expires_at": _iso(s.expires_at),
            "age_days": int((now - s.created_at) // 86400),
            "active": s.expires_at is None or now < s.expires_at,
        }
        for s in await _secrets(ctx, app)
    ]
    return {
        "id": app.id,
        "client_id": app.client_id,
        "name": app.name,
        "client_type": app.client_type,
        "scopes": list(app.scopes),
        "redirect_uris": list(app.redirect_uris),
        "grant_types": list(app.grant_types),
        "refresh_in_cookie": app.refresh_in_cookie,
        "tenant_id": app.tenant_id,
        "created_at": _iso(app.created_at),
        "updated_at": _iso(app.updated_at),
        "secrets": secrets,
    }


async def _secrets(ctx: Context, app: OAuthApp) -> list[ClientSecret]:
    async with ctx.store.transaction() as tx:
        return await tx.apps.secrets_for(app.id)


async def _get_app(ctx: Context, request: web.Request) -> OAuthApp:
    async with ctx.store.transaction() as tx:
        app = await tx.apps.app_by_id(request.match_info["app_id"])
    if app is None:
        raise ApiError(404, "not_found", "no such app")
    return app


async def create_app(request: web.Request) -> web.Response:
    require_admin(request)
    ctx: Context = request.app["ctx"]
    body = await json_object(request, ctx.config.max_body_bytes, APP_FIELDS, {"name", "scopes"})
    fields = validate_app_fields(body, creating=True)
    check_app_consistency(fields["client_type"], fields["grant_types"], fields["redirect_uris"])
    now = time.time()
    app = OAuthApp(
        id=new_id("app"),
        client_id=new_id("cli"),
        name=fields["name"],
        client_type=fields["client_type"],
        scopes=fields["scopes"],
        redirect_uris=fields["redirect_uris"],
        grant_types=fields["grant_types"],
        refresh_in_cookie=fields.get("refresh_in_cookie", False),
        tenant_id=fields["tenant_id"],
        created_at=now,
        updated_at=now,
    )
    secret_value = None
    secret = None
    if app.confidential:
        secret_value = new_token(32)
        secret = ClientSecret(new_id("sec"), app.id, ctx.server_keys.hash_client_secret(secret_value), now, None)
    async with ctx.store.transaction() as tx:
        await tx.apps.insert_app(app)
        if secret is not None:
            await tx.apps.insert_secret(secret)
        detail = {"name": app.name, "client_type": app.client_type, "scopes": list(app.scopes)}
        await tx.events.app_event("app_created", app, now, client_ip(request), detail)
    view = await _app_view(ctx, app)
    if secret_value is not None:
        view["client_secret"] = secret_value
    return web.json_response(view, status=201, headers={"Cache-Control": "no-store"})


async def list_apps(request: web.Request) -> web.Response:
    require_admin(request)
    ctx: Context = request.app["ctx"]
    async with ctx.store.transaction() as tx:
        apps = await tx.apps.list_apps()
    return web.json_response({"apps": [await _app_view(ctx, a) for a in apps]})


async def get_app(request: web.Request) -> web.Response:
    require_admin(request)
    ctx: Context = request.app["ctx"]
    return web.json_response(await _app_view(ctx, await _get_app(ctx, request)))


async def patch_app(request: web.Request) -> web.Response:
    require_admin(request)
    ctx: Context = request.app["ctx"]
    app = await _get_app(ctx, request)
    body = await json_object(request, ctx.config.max_body_bytes, APP_FIELDS - {"client_type"})
    fields = validate_app_fields(body, creating=False)
    now = time.time()
    updated = OAuthApp(**{**app.__dict__, **fields, "updated_at": now})
    check_app_consistency(updated.client_type, updated.grant_types, updated.redirect_uris)
    await update_app(ctx.store, updated, tuple(sorted(fields)), now, client_ip(request))
    return web.json_response(await _app_view(ctx, updated))


async def delete_app(request: web.Request) -> web.Response:
    require_admin(request)
    ctx: Context = request.app["ctx"]
    await withdraw_app(ctx.store, await _get_app(ctx, request), time.time(), client_ip(request))
    return web.Response(status=204)


async def rotate_secret(request: web.Request) -> web.Response:
    require_admin(request)
    ctx: Context = request.app["ctx"]
    app = await _get_app(ctx, request)
    if not app.confidential:
        raise ApiError(400, "invalid_request", "public clients have no secret")
    fields = {"grace_seconds", "previous_expires_at"}
    body = await json_object(request, ctx.config.max_body_bytes, fields) if request.can_read_body else {}
    now = time.time()
    if "previous_expires_at" in body:
        if "grace_seconds" in body:
            raise ApiError(400, "invalid_request", "give grace_seconds or previous_expires_at, not both")
        try:
            expiry = dt.datetime.fromisoformat(str(body["previous_expires_at"]).replace("Z", "+00:00")).timestamp()
        except ValueError:
            raise ApiError(400, "invalid_request", "previous_expires_at must be an RFC 3339 timestamp") from None
        grace = int(expiry - now)
    else:
        grace = body.get("grace_seconds", 0)
    if isinstance(grace, bool) or not isinstance(grace, int) or not 0 <= grace <= 30 * 86400:
        raise ApiError(400, "invalid_request", "the grace period must lie between now and 30 days from now")
    value = new_token(32)
    secret = ClientSecret(new_id("sec"), app.id, ctx.server_keys.hash_client_secret(value), now, None)
    async with ctx.store.transaction() as tx:  # secrets without an expiry, or a later one, now end with the grace
        await tx.apps.expire_secrets(app.id, now + grace)
        await tx.apps.insert_secret(secret)
        detail = {"previous_expire_at": now + grace, "secret_id": secret.id}
        await tx.events.app_event("secret_rotated", app, now, client_ip(request), detail)
    view = await _app_view(ctx, app)
    view["client_secret"] = value
    return web.json_response(view, headers={"Cache-Control": "no-store"})


def _user_view(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "subject": user.subject,
        "tenant_id": user.tenant_id,
        "roles": list(user.roles),
        "created_at": _iso(user.created_at),
    }


async def create_user(request: web.Request) -> web.Response:
    require_admin(request)
    ctx: Context = request.app["ctx"]
    body = await json_object(
        request,
        ctx.config.max_body_bytes,
        {"subject", "tenant_id", "roles", "password"},
        {"subject", "tenant_id", "password"},
    )
    subject, tenant, password = body["subject"], body["tenant_id"], body["password"]
    roles = body.get("roles", ["viewer"])
    if not isinstance(subject, str) or not _SUBJECT.fullmatch(subject):
        raise ApiError(400, "invalid_request", "subject must be 1-200 characters of letters, digits, . _ @ + -")
    if not isinstance(tenant, str) or not tenant or len(tenant) > 200:
        raise ApiError(400, "invalid_request", "tenant_id must be a non-empty string")
    if not isinstance(roles, list) or any(r not in _ROLES for r in roles):
        raise ApiError(400, "invalid_request", f"roles must be a list of {', '.join(_ROLES)}")
    if not isinstance(password, str) or not 12 <= len(password) <= 1024:
        raise ApiError(400, "invalid_request", "password must be 12 to 1024 characters")
    async with ctx.store.transaction() as tx:
        existing = await tx.users.user_by_subject(subject)
    if existing:
        raise ApiError(409, "conflict", "a user with this subject exists")
    user = User(new_id("usr"), subject, tenant, tuple(roles), hash_password(password), time.time())
    async with ctx.store.transaction() as tx:
        await tx.users.insert_user(user)
        await tx.events.record(
            "user_created",
            user.created_at,
            subject=user.subject,
            ip=client_ip(request),
            admin=True,
            resource=f"user/{user.id}",
            detail={"tenant_id": user.tenant_id, "roles": list(user.roles)},
        )
    return web.json_response(_user_view(user), status=201)


async def list_users(request: web.Request) -> web.Response:
    require_admin(request)
    ctx: Context = request.app["ctx"]
    async with ctx.store.transaction() as tx:
        users = await tx.users.list_users()
    return web.json_response({"users": [_user_view(u) for u in users]})


async def delete_user(request: web.Request) -> web.Response:
    require_admin(request)
    ctx: Context = request.app["ctx"]
    async with ctx.store.transaction() as tx:
        user = await tx.users.user_by_id(request.match_info["user_id"])
    if user is None:
        raise ApiError(404, "not_found", "no such user")
    await withdraw_user(ctx.store, user, time.time(), client_ip(request))
    return web.Response(status=204)


def _float_param(params: dict[str, str], name: str) -> float | None:
    if name not in params:
        return None
    try:
        return float(params[name])
    except ValueError:
        try:
            return dt.datetime.fromisoformat(params[name].replace("Z", "+00:00")).timestamp()
        except ValueError:
            raise ApiError(400, "invalid_request", f"{name} must be epoch seconds or RFC 3339") from None


async def token_events(request: web.Request) -> web.Response:
    require_admin(request)
    ctx: Context = request.app["ctx"]
    params = query_params(request, oauth=False)
    unknown = set(params) - {"type", "client_id", "since", "until", "limit"}
    if unknown:
        raise ApiError(400, "invalid_request", f"unknown parameter(s): {', '.join(sorted(unknown))}")
    limit_text = params.get("limit", "100")
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= 1000:
        raise ApiError(400, "invalid_request", "limit must be 1 to 1000")
    events = await ctx.store.events.list_events(
        params.get("type"),
        params.get("client_id"),
        _float_param(params, "since"),
        _float_param(params, "until"),
        int(limit_text),
    )
    return web.json_response(
        {
            "events": [
                {
                    "id": e.id,
                    "type": e.type,
                    "client_id": e.client_id,
                    "subject": e.subject,
                    "family_id": e.family_id,
                    "ip": e.ip,
                    "detail": e.detail,
                    "created_at": _iso(e.created_at),
                }
                for e in events
            ]
        }
    )


async def rotate_keys(request: web.Request) -> web.Response:
    require_admin(request)
    ctx: Context = request.app["ctx"]
    key, activates_at = await ctx.keys.rotate()
    await ctx.store.add_event(
        "signing_keys_rotated",
        time.time(),
        ip=client_ip(request),
        admin=True,
        resource=f"key/{key.kid}",
        detail={"kid": key.kid, "activates_at": activates_at},
    )
    # published now on every replica; it signs from activates_at (one JWKS max-age later), active_kid until then
    body = {"kid": key.kid, "activates_at": activates_at, "active_kid": ctx.keys.active.kid}
    return web.json_response({**body, "keys": ctx.keys.describe()})


async def list_keys(request: web.Request) -> web.Response:
    require_admin(request)
    ctx: Context = request.app["ctx"]
    return web.json_response({"keys": ctx.keys.describe()})


async def revocations(request: web.Request) -> web.Response:
    """The access-token revocation feed polled by sidecars (sidecar credential or admin token)."""
    ctx: Context = request.app["ctx"]
    await require_sidecar_or_admin(request)
    params = query_params(request, oauth=False)
    since_text = params.get("since", "0")
    if not since_text.isdigit():
        raise ApiError(400, "invalid_request", "since must be a non-negative integer")
    items = await ctx.store.revocations.revocations_since(int(since_text), time.time())
    next_since = items[-1]["seq"] if items else int(since_text)
    return web.json_response({"revocations": items, "next_since": next_since}, headers={"Cache-Control": "no-store"})
