"""GET/POST /v1/oauth/authorize (RFC 6749 §4.1, RFC 7636, RFC 9207) with the sign-in page.

Until client_id and redirect_uri are proven valid, errors are shown here and never redirected (§4.1.2.1), so the
endpoint cannot be used as an open redirector. PKCE S256 and state are mandatory. Codes are 256-bit, single-use,
valid 60 s, and bound to client, redirect URI, PKCE challenge, user and scopes; only their hash is stored.

The sign-in form carries a CSRF token that is an HMAC over the exact authorization request and an expiry, so a
form cannot be replayed for another request or after 10 minutes; a post from another origin is refused
(controlplane.web.origin). Pages are rendered by controlplane.web.pages (autoescaped templates, CSP).

Password guessing is limited per client address and subject (429) — the address is the real client's when a
trusted proxy (the gateway) says so — and slowed, never refused, per subject across all addresses.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from controlplane.http import client_ip, oauth_form, query_params
from controlplane.oauth import pkce
from controlplane.oauth.apps import redirect_matches
from controlplane.oauth.context import Context
from controlplane.oauth.errors import OAuthError
from controlplane.oauth.limits import limit_ip, slow_busy_subject
from controlplane.passwords import DUMMY_HASH, verify_password
from controlplane.secrets import new_token
from controlplane.store.models import AuthCode, OAuthApp
from controlplane.web.origin import form_post_allowed
from controlplane.web.pages import error_page, login_page
from coresdk.config.controlplane import CODE_TTL, origin_of

OAUTH_PARAMS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
)
CSRF_TTL = 600


class _PageError(Exception):
    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


def _redirect_target(uri: str) -> str:
    """What form-action must allow for the redirect after sign-in: the origin, or the scheme of a native app."""
    parts = urlsplit(uri)
    if parts.scheme in ("http", "https"):
        return origin_of(uri)
    return f"{parts.scheme}:"


def _redirect(uri: str, params: dict[str, str]) -> web.Response:
    sep = "&" if urlsplit(uri).query else "?"
    return web.Response(status=302, headers={"Location": f"{uri}{sep}{urlencode(params)}", "Cache-Control": "no-store"})


async def _validate(ctx: Context, params: dict[str, str]) -> tuple[OAuthApp, tuple[str, ...]]:
    """Raise _PageError (no redirect possible) or OAuthError (redirect with error) or return (app, scopes)."""
    client_id = params.get("client_id", "")
    app = None
    if client_id:
        async with ctx.store.transaction() as tx:
            app = await tx.apps.app_by_client_id(client_id)
    if app is None:
        raise _PageError("Unknown client.")
    redirect_uri = params.get("redirect_uri", "")
    if not redirect_uri or not redirect_matches(app.redirect_uris, redirect_uri):
        raise _PageError("The redirect URI is not registered for this client.")
    if params.get("response_type") != "code":
        raise OAuthError("unsupported_response_type", "only response_type=code is supported")
    if "authorization_code" not in app.grant_types:
        raise OAuthError("unauthorized_client", "this client may not use the authorization code grant")
    if not params.get("state"):
        raise OAuthError("invalid_request", "state is required")
    problem = pkce.challenge_problem(params.get("code_challenge", ""), params.get("code_challenge_method"))
    if problem is not None:
        raise OAuthError("invalid_request", problem)
    wanted = tuple(dict.fromkeys(params.get("scope", "").split())) or app.scopes
    extra = [s for s in wanted if s not in app.scopes]
    if extra:
        raise OAuthError("invalid_scope", f"scope not allowed for this client: {' '.join(extra)}")
    return app, wanted


def _csrf(ctx: Context, params: dict[str, str], expires: int) -> str:
    canonical = urlencode(sorted((k, params.get(k, "")) for k in OAUTH_PARAMS)) + f"&exp={expires}"
    mac = hmac.new(ctx.server_keys.hash_token("csrf").encode(), canonical.encode(), hashlib.sha256).hexdigest()
    return f"{expires}.{mac}"


def _csrf_ok(ctx: Context, params: dict[str, str], token: str) -> bool:
    expires_text, _, _ = token.partition(".")
    if not expires_text.isdigit() or int(expires_text) < time.time():
        return False
    return hmac.compare_digest(_csrf(ctx, params, int(expires_text)), token)


async def authorize(request: web.Request) -> web.Response:
    ctx: Context = request.app["ctx"]
    ip = client_ip(request)
    try:
        await limit_ip(ctx, "authorize", ip)
        if request.method == "GET":
            params = query_params(request)
        else:
            allowed = (origin_of(ctx.config.issuer), *ctx.config.public_origins)
            if not form_post_allowed(request.headers, allowed):
                return error_page("Cross-origin sign-in refused.", 403)
            params = await oauth_form(request, ctx.config.max_body_bytes)
    except OAuthError as err:
        return error_page(err.description, err.status)
    oauth = {k: params[k] for k in OAUTH_PARAMS if k in params}
    try:
        app, scopes = await _validate(ctx, oauth)
    except _PageError as err:
        return error_page(err.description)
    except OAuthError as err:
        out = {"error": err.error, "error_description": err.description, "iss": ctx.config.issuer}
        if oauth.get("state"):
            out["state"] = oauth["state"]
        return _redirect(oauth["redirect_uri"], out)

    def page(error: str = "", status: int = 200, username: str = "") -> web.Response:
        csrf = _csrf(ctx, oauth, int(time.time()) + CSRF_TTL)
        target = _redirect_target(oauth["redirect_uri"])
        return login_page(app.name, " ".join(scopes), oauth, csrf, target, error, username, status)

    if request.method == "GET":
        return page()
    if not _csrf_ok(ctx, oauth, params.get("csrf", "")):
        return page("Your sign-in form expired. Please try again.", 400)
    username = params.get("username", "")
    wait = await ctx.login_limiter.take(f"{ip}:{username}")
    if wait is not None:
        ctx.metrics.rate_limited.labels("login", "ip_user").inc()
        response = page("Too many attempts. Please wait and try again.", 429, username)
        response.headers["Retry-After"] = str(wait)
        return response
    await slow_busy_subject(ctx, username)
    user = None
    if username:
        async with ctx.store.transaction() as tx:
            user = await tx.users.user_by_subject(username)
    ok = await verify_password(user.password_hash if user else DUMMY_HASH, params.get("password", ""))
    if user is None or not ok:
        await ctx.store.add_event("login_failed", time.time(), client_id=app.client_id, subject=username[:200], ip=ip)
        return page("Invalid username or password.", 401, username)
    code = new_token()
    now = time.time()
    async with ctx.store.transaction() as tx:
        await tx.codes.insert_code(
            AuthCode(
                code_hash=ctx.server_keys.hash_token(code),
                client_id=app.client_id,
                redirect_uri=oauth["redirect_uri"],
                code_challenge=oauth["code_challenge"],
                subject=user.subject,
                tenant_id=user.tenant_id,
                roles=user.roles,
                scopes=scopes,
                created_at=now,
                expires_at=now + CODE_TTL,
            )
        )
    return _redirect(oauth["redirect_uri"], {"code": code, "state": oauth["state"], "iss": ctx.config.issuer})
