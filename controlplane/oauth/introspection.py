"""Token introspection (RFC 7662 §2), the rule behind POST /v1/oauth/introspect.

Only confidential clients may ask. A client sees its own tokens; a resource server app that declares the scope
`coresdk:introspect` sees any token. A token is active while unrevoked and unexpired (a refresh token: also
unused). Everything else, including a token the caller may not see, is just `{"active": false}` (§2.2).
"""

from __future__ import annotations

from typing import Any

from controlplane.oauth.errors import OAuthError
from controlplane.oauth.services import OAuthServices
from controlplane.oauth.tokens_lookup import FoundAccess, FoundRefresh, find_access, find_refresh
from controlplane.store.models import OAuthApp

INTROSPECT_ANY = "coresdk:introspect"
INACTIVE: dict[str, Any] = {"active": False}


def _access_view(found: FoundAccess, may_see: bool, now: float) -> dict[str, Any]:
    rec, claims = found.record, found.claims
    if not may_see or rec.revoked_at is not None or rec.expires_at <= now:
        return dict(INACTIVE)
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
    return body


def _refresh_view(found: FoundRefresh, may_see: bool, now: float) -> dict[str, Any]:
    rec, fam = found.record, found.family
    expires = min(rec.idle_expires_at, fam.absolute_expires_at)
    if not may_see or fam.revoked_at is not None or rec.used_at is not None or now >= expires:
        return dict(INACTIVE)
    return {
        "active": True,
        "token_type": "refresh_token",
        "scope": " ".join(fam.scopes),
        "client_id": fam.client_id,
        "sub": fam.subject,
        "exp": int(expires),
    }


async def introspect_token(svc: OAuthServices, app: OAuthApp, token: str, now: float) -> dict[str, Any]:
    if not app.confidential:
        raise OAuthError("invalid_client", "introspection requires a confidential client", status=401)
    may_see_all = INTROSPECT_ANY in app.scopes
    async with svc.store.transaction() as tx:
        access = await find_access(svc, tx, token)
        if access is not None:
            return _access_view(access, may_see_all or access.record.client_id == app.client_id, now)
        refresh = await find_refresh(svc, tx, token)
    if refresh is not None:
        return _refresh_view(refresh, may_see_all or refresh.family.client_id == app.client_id, now)
    return dict(INACTIVE)
