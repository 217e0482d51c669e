"""POST /v1/oauth/introspect (RFC 7662), for confidential clients.

A client may introspect tokens issued to itself; a resource server app that declares the scope
`coresdk:introspect` may introspect any token. Everything else is simply `{"active": false}`.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from controlplane.oauth.errors import NO_STORE, OAuthError
from controlplane.oauth.revoke import client_request
from controlplane.oauth.tokens_lookup import find_access, find_refresh

INTROSPECT_ANY = "coresdk:introspect"


async def introspect(request: web.Request) -> web.Response:
    ctx, app, form, _ = await client_request(request, "introspect")
    if not app.confidential:
        raise OAuthError("invalid_client", "introspection requires a confidential client", status=401)
    token = form.get("token")
    if not token:
        raise OAuthError("invalid_request", "token is required")
    may_see_all = INTROSPECT_ANY in app.scopes
    now = time.time()
    body: dict[str, Any] = {"active": False}
    access = await find_access(ctx, token)
    if access is not None:
        rec = access.record
        if (may_see_all or rec.client_id == app.client_id) and rec.revoked_at is None and rec.expires_at > now:
            claims = access.claims
            body = {
                "active": True,
                "token_type": "Bearer",
                "scope": " ".join(rec.scopes),
                "client_id": rec.client_id,
                "sub": rec.subject,
                "aud": claims.get("aud"),
                "iss": claims.get("iss"),
                "jti": rec.jti,
                "iat": int(rec.issued_at),
                "exp": int(rec.expires_at),
            }
            for extra in ("tenant_id", "roles"):
                if extra in claims:
                    body[extra] = claims[extra]
    else:
        found = await find_refresh(ctx, token)
        if found is not None:
            rec_r, fam = found.record, found.family
            live = (
                fam.revoked_at is None
                and rec_r.used_at is None
                and now < min(rec_r.idle_expires_at, fam.absolute_expires_at)
            )
            if (may_see_all or fam.client_id == app.client_id) and live:
                body = {
                    "active": True,
                    "token_type": "refresh_token",
                    "scope": " ".join(fam.scopes),
                    "client_id": fam.client_id,
                    "sub": fam.subject,
                    "exp": int(min(rec_r.idle_expires_at, fam.absolute_expires_at)),
                }
    return web.json_response(body, headers=NO_STORE)
