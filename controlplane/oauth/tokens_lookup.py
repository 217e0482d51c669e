"""Recognising a presented token as ours: an opaque refresh token (by hash) or a JWT access token (by our keys)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import jwt

from controlplane.oauth.context import Context
from controlplane.store.models import AccessRecord, RefreshRecord, TokenFamily


@dataclass(frozen=True)
class FoundRefresh:
    record: RefreshRecord
    family: TokenFamily


@dataclass(frozen=True)
class FoundAccess:
    record: AccessRecord
    claims: dict[str, Any]


async def find_refresh(ctx: Context, token: str) -> FoundRefresh | None:
    found = await ctx.store.refresh_lookup(ctx.server_keys.hash_token(token))
    return FoundRefresh(*found) if found else None


async def find_access(ctx: Context, token: str) -> FoundAccess | None:
    """Our signature, our issuer; expiry is judged by the caller (revoking an expired token is a no-op)."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        return None
    keys = {k.kid: k for k in ctx.keys.public_keys(time.time())}
    key = keys.get(str(header.get("kid")))
    if key is None or header.get("alg") != "RS256":
        return None
    try:
        claims = jwt.decode(
            token,
            key.private_key.public_key(),
            algorithms=["RS256"],
            issuer=ctx.config.issuer,
            options={"verify_exp": False, "verify_aud": False, "require": ["jti", "exp", "iat"]},
        )
    except jwt.PyJWTError:
        return None
    record = await ctx.store.access_lookup(str(claims["jti"]))
    return FoundAccess(record, claims) if record else None
