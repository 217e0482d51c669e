"""Claim rules for access tokens (RFC 7519 §4.1, RFC 8725 §3, RFC 9068 §4), applied after the signature is valid.

Short lifetimes are enforced from both ends: the issuer cannot mint a token that lives longer than the policy
(exp − iat), and cannot backdate iat to disguise one (exp − now).
"""

from __future__ import annotations

from typing import Any

from coresdk import reasons
from coresdk.config.engine import IssuerConfig, TokenPolicy
from coresdk.errors import Unauthenticated


def _numeric_date(claims: dict[str, Any], name: str, required: bool) -> float | None:
    value = claims.get(name)
    if value is None:
        if required:
            raise Unauthenticated(reasons.MISSING_CLAIM, f"'{name}' claim is required")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Unauthenticated(reasons.INVALID_CLAIM, f"'{name}' must be a NumericDate")
    return float(value)


def audience_list(claims: dict[str, Any]) -> list[str]:
    aud = claims.get("aud")
    if aud is None:
        raise Unauthenticated(reasons.MISSING_CLAIM, "'aud' claim is required")
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list) and all(isinstance(a, str) for a in aud):
        return list(aud)
    raise Unauthenticated(reasons.INVALID_CLAIM, "'aud' must be a string or a list of strings")


def check_claims(claims: dict[str, Any], issuer: IssuerConfig, audience: str, policy: TokenPolicy, now: float) -> float:
    """Raise Unauthenticated on the first broken rule; return exp."""
    if claims.get("iss") != issuer.issuer:
        raise Unauthenticated(reasons.ISSUER_MISMATCH, "issuer is not trusted")
    sub = claims.get("sub")
    if sub is None:
        raise Unauthenticated(reasons.MISSING_CLAIM, "'sub' claim is required")
    if not isinstance(sub, str) or not sub:
        raise Unauthenticated(reasons.INVALID_CLAIM, "'sub' must be a non-empty string")
    if audience not in audience_list(claims):
        raise Unauthenticated(reasons.AUDIENCE_MISMATCH, "token is not meant for this audience")
    exp = _numeric_date(claims, "exp", required=True)
    iat = _numeric_date(claims, "iat", required=True)
    nbf = _numeric_date(claims, "nbf", required=False)
    assert exp is not None and iat is not None
    leeway = policy.leeway_seconds
    if now >= exp + leeway:
        raise Unauthenticated(reasons.TOKEN_EXPIRED, "token has expired")
    if iat > now + leeway:
        raise Unauthenticated(reasons.IAT_IN_FUTURE, "token was issued in the future")
    if nbf is not None and nbf > now + leeway:
        raise Unauthenticated(reasons.TOKEN_NOT_YET_VALID, "token is not valid yet")
    if exp <= iat:
        raise Unauthenticated(reasons.INVALID_CLAIM, "'exp' must be after 'iat'")
    if exp - iat > policy.max_ttl_seconds or exp - now > policy.max_ttl_seconds + leeway:
        raise Unauthenticated(reasons.LIFETIME_TOO_LONG, f"token lifetime exceeds {policy.max_ttl_seconds} seconds")
    return exp
