"""The access-token decision: parse strictly, pick the issuer's key, verify, then check claims.

Order matters: header rules and the signature come before any claim is believed; the unverified `iss` is only
used to choose which issuer's key set to verify against, and a key of one issuer never verifies another's token.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from coresdk import reasons
from coresdk.auth.cache import CachedPrincipal, VerifiedCache, cache_key, entry
from coresdk.auth.claims import check_claims
from coresdk.auth.jwks import JwksSource
from coresdk.auth.principal import to_principal
from coresdk.auth.revocations import RevocationFeed
from coresdk.config.engine import IssuerConfig, TokenPolicy
from coresdk.errors import InvalidArgument, Unauthenticated
from coresdk.jose.jwk import VerificationKey
from coresdk.jose.jws import CompactJWS, parse_compact, select_key, strict_json_object, verify_signature
from coresdk.metrics import EngineMetrics
from coresdk.v1.common_pb2 import Principal

_AT_JWT_TYPES = frozenset({"at+jwt", "application/at+jwt"})


@dataclass(frozen=True)
class TrustedIssuer:
    config: IssuerConfig
    source: JwksSource


class TokenValidator:
    def __init__(
        self,
        issuers: Mapping[str, TrustedIssuer],
        policy: TokenPolicy,
        cache: VerifiedCache,
        metrics: EngineMetrics,
        clock: Callable[[], float] = time.time,
        revocations: RevocationFeed | None = None,
    ) -> None:
        self._issuers = dict(issuers)
        self._policy = policy
        self._cache = cache
        self._metrics = metrics
        self._clock = clock
        self._revocations = revocations
        self._hits = metrics.cache.labels("hit")
        self._misses = metrics.cache.labels("miss")
        self._cache_size = metrics.cache_size
        for trusted in self._issuers.values():
            trusted.source.on_change(self._on_keys_changed)

    def _on_keys_changed(self, issuer: str, live: frozenset[str]) -> None:
        self._cache.drop_keys_not_in(issuer, live)
        self._metrics.cache_size.set(len(self._cache))

    async def authenticate(self, token: str, audience: str = "") -> Principal:
        return (await self.verify(token, audience)).principal

    async def verify(self, token: str, audience: str = "") -> CachedPrincipal:
        """The verified answer for a token, with its Principal already serialised; raises CoreSDKError otherwise."""
        if len(token) > self._policy.max_token_bytes:
            raise InvalidArgument(reasons.TOKEN_TOO_LARGE, f"token exceeds {self._policy.max_token_bytes} bytes")
        if len(audience) > 1024:
            raise InvalidArgument(reasons.AUDIENCE_NOT_ALLOWED, "audience too long")
        now = self._clock()
        key = cache_key(token, audience)
        hit = self._cache.get(key, now)
        if hit is not None:
            # A cached answer is still subject to the issuer's key availability (fail closed when stale).
            self._issuers[hit.issuer].source.current()
            if self._revocations is not None:
                self._revocations.check(hit.principal.token_id)
            self._hits.inc()
            return hit
        self._misses.inc()

        jws = parse_compact(token, self._policy.max_token_bytes)
        if self._policy.require_at_jwt_typ:
            typ = jws.header.get("typ")
            if not isinstance(typ, str) or typ.lower() not in _AT_JWT_TYPES:
                raise Unauthenticated(reasons.TYP_NOT_ALLOWED, "token type must be at+jwt (RFC 9068)")
        claims = strict_json_object(jws.payload)
        iss = claims.get("iss")
        trusted = self._issuers.get(iss) if isinstance(iss, str) else None
        if trusted is None:
            raise Unauthenticated(reasons.ISSUER_MISMATCH, "issuer is not trusted")
        wanted = audience or trusted.config.audiences[0]
        if wanted not in trusted.config.audiences:
            raise InvalidArgument(reasons.AUDIENCE_NOT_ALLOWED, "audience is not in the configured allowlist")

        try:
            verification_key = select_key(trusted.source.current(), jws)
        except Unauthenticated as exc:
            if exc.reason != reasons.UNKNOWN_KID:
                raise
            verification_key = await self._key_after_refetch(trusted, jws, exc)
        verify_signature(jws, verification_key)
        exp = check_claims(claims, trusted.config, wanted, self._policy, now)
        if self._revocations is not None:
            jti = claims.get("jti")
            self._revocations.check(jti if isinstance(jti, str) else "")
        verified = entry(to_principal(claims), trusted.config.issuer, verification_key.thumbprint, exp)
        self._cache.put(key, verified)
        self._cache_size.set(len(self._cache))
        return verified

    async def _key_after_refetch(
        self, trusted: TrustedIssuer, jws: CompactJWS, unknown: Unauthenticated
    ) -> VerificationKey:
        """An unknown kid may be a key published since the last fetch: refetch once (rate-limited by the source)."""
        refreshed = await trusted.source.refetch_for_unknown_kid()
        if refreshed is None:
            raise unknown
        return select_key(trusted.source.current(), jws)
