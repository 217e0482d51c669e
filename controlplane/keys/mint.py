"""Access-token claims per RFC 9068 (typ at+jwt), as the JWS signs them with the key's own algorithm."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Sequence


def access_claims(
    *,
    issuer: str,
    subject: str,
    audience: str,
    client_id: str,
    scopes: Sequence[str],
    ttl_seconds: int,
    tenant_id: str = "",
    roles: Sequence[str] = (),
    now: float | None = None,
    jti: str | None = None,
) -> bytes:
    """The claims of an RFC 9068 access token as the JSON the JWS signs."""
    issued = int(time.time() if now is None else now)
    claims: dict[str, object] = {
        "iss": issuer,
        "sub": subject,
        "aud": audience,
        "client_id": client_id,
        "scope": " ".join(scopes),
        "jti": jti or secrets.token_urlsafe(16),
        "iat": issued,
        "exp": issued + ttl_seconds,
    }
    if tenant_id:
        claims["tenant_id"] = tenant_id
    if roles:
        claims["roles"] = list(roles)
    return json.dumps(claims, separators=(",", ":")).encode()
