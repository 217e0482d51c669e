"""Recognising a presented token as ours: an opaque refresh token (by hash) or a JWT access token (by our keys)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import jwt

from controlplane.oauth.services import OAuthServices
from controlplane.store.models import AccessRecord, RefreshRecord, TokenFamily
from controlplane.store.store import StoreTx


@dataclass(frozen=True)
class FoundRefresh:
    record: RefreshRecord
    family: TokenFamily


@dataclass(frozen=True)
class FoundAccess:
    record: AccessRecord
    claims: dict[str, Any]


async def find_refresh(svc: OAuthServices, tx: StoreTx, token: str) -> FoundRefresh | None:
    record = await tx.families.refresh(svc.server_keys.hash_token(token))
    if record is None:
        return None
    family = await tx.families.family(record.family_id)
    assert family is not None  # refresh_tokens.family_id references token_families
    return FoundRefresh(record, family)


def access_claims(svc: OAuthServices, token: str) -> dict[str, Any] | None:
    """Our signature, our issuer; expiry is judged by the caller (revoking an expired token is a no-op)."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        return None
    keys = {k.kid: k for k in svc.keys.public_keys(time.time())}
    key = keys.get(str(header.get("kid")))
    if key is None or header.get("alg") != key.alg:  # each key signs with the one algorithm it was made for
        return None
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key.private_key.public_key(),
            algorithms=[key.alg],
            issuer=svc.config.issuer,
            options={"verify_exp": False, "verify_aud": False, "require": ["jti", "exp", "iat"]},
        )
    except jwt.PyJWTError:
        return None
    return claims


async def find_access(svc: OAuthServices, tx: StoreTx, token: str) -> FoundAccess | None:
    claims = access_claims(svc, token)
    if claims is None:
        return None
    record = await tx.tokens.access(str(claims["jti"]))
    return FoundAccess(record, claims) if record else None
