"""The checks one token goes through before it is believed, as a pure function of the token, the trusted issuers'
key sets and the clock.

Order matters: header rules and the signature come before any claim is believed; the unverified `iss` is only
used to choose which issuer's key set to verify against, and a key of one issuer never verifies another's token.
The same function runs in the validator and in its worker processes (coresdk.auth.workers), so a token gets the
same verdict wherever it is judged. What needs state outside the token — the cache, the revocation list, refetching
keys for an unknown kid — stays with the validator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from coresdk import reasons
from coresdk.auth.claims import check_claims
from coresdk.config.engine import IssuerConfig, TokenPolicy
from coresdk.errors import InvalidArgument, Unauthenticated
from coresdk.jose.jwk import KeySet, VerificationKey
from coresdk.jose.jws import parse_compact, select_key, strict_json_object, verify_signature

_AT_JWT_TYPES = frozenset({"at+jwt", "application/at+jwt"})

# iss → its configuration, or None for an issuer that is not trusted.
IssuerLookup = Callable[[str], "IssuerConfig | None"]
# issuer → its current key set (raises Unavailable when the keys are not current: fail closed).
KeyLookup = Callable[[str], KeySet]


class UnknownKid(Unauthenticated):
    """No key of the issuer has the token's kid; the validator may refetch the issuer's keys once and judge again."""

    def __init__(self, issuer: str) -> None:
        super().__init__(reasons.UNKNOWN_KID, "no key with this kid")
        self.issuer = issuer


@dataclass(frozen=True, slots=True)
class Verdict:
    claims: dict[str, Any]
    issuer: IssuerConfig
    key: VerificationKey
    exp: float


def judge(
    token: str, audience: str, policy: TokenPolicy, issuer_of: IssuerLookup, keys_of: KeyLookup, now: float
) -> Verdict:
    """The verdict on a token whose signature and claims hold; raises CoreSDKError on the first broken rule."""
    jws = parse_compact(token, policy.max_token_bytes)
    if policy.require_at_jwt_typ:
        typ = jws.header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in _AT_JWT_TYPES:
            raise Unauthenticated(reasons.TYP_NOT_ALLOWED, "token type must be at+jwt (RFC 9068)")
    claims = strict_json_object(jws.payload)
    iss = claims.get("iss")
    config = issuer_of(iss) if isinstance(iss, str) else None
    if config is None:
        raise Unauthenticated(reasons.ISSUER_MISMATCH, "issuer is not trusted")
    wanted = audience or config.audiences[0]
    if wanted not in config.audiences:
        raise InvalidArgument(reasons.AUDIENCE_NOT_ALLOWED, "audience is not in the configured allowlist")
    try:
        key = select_key(keys_of(config.issuer), jws)
    except Unauthenticated as exc:
        if exc.reason == reasons.UNKNOWN_KID:
            raise UnknownKid(config.issuer) from None
        raise
    verify_signature(jws, key)
    exp = check_claims(claims, config, wanted, policy, now)
    return Verdict(claims, config, key, exp)
