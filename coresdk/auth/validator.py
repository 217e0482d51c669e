"""The access-token decision: the cache, then the checks of coresdk.auth.verdict, then the revocation list.

A batch (`verify_many`) may have its cache misses judged in worker processes (coresdk.auth.workers) — the same
checks against the same keys and clock — while the cache, the revocation list and refetching keys for an unknown kid
stay here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from coresdk import reasons
from coresdk.auth.cache import CachedPrincipal, VerifiedCache, cache_key
from coresdk.auth.jwks import JwksSource
from coresdk.auth.principal_wire import principal_wire
from coresdk.auth.revocations import RevocationFeed
from coresdk.auth.verdict import UnknownKid, judge
from coresdk.auth.workers import Outcome, VerifierPool, WorkerUnavailable
from coresdk.config.engine import IssuerConfig, TokenPolicy
from coresdk.errors import CoreSDKError, InvalidArgument
from coresdk.jose.jwk import KeySet
from coresdk.metrics import EngineMetrics
from coresdk.v1.common_pb2 import Principal

log = logging.getLogger("coresdk.auth")
# Fewer tokens than this are judged here: a round trip to a worker costs about what verifying two tokens does.
_MIN_FOR_WORKERS = 4


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
        workers: VerifierPool | None = None,
    ) -> None:
        self._issuers = dict(issuers)
        self._configs = {iss: t.config for iss, t in self._issuers.items()}
        self._policy = policy
        self._cache = cache
        self._metrics = metrics
        self._clock = clock
        self._revocations = revocations
        self._workers = workers
        self._hits = metrics.cache.labels("hit")
        self._misses = metrics.cache.labels("miss")
        self._cache_size = metrics.cache_size
        for trusted in self._issuers.values():
            trusted.source.on_change(self._on_keys_changed)

    def _on_keys_changed(self, issuer: str, live: frozenset[str]) -> None:
        self._cache.drop_keys_not_in(issuer, live)
        self._metrics.cache_size.set(len(self._cache))

    def _keys_of(self, issuer: str) -> KeySet:
        return self._issuers[issuer].source.current()

    async def authenticate(self, token: str, audience: str = "") -> Principal:
        return (await self.verify(token, audience)).principal

    def _cached(self, token: str, audience: str, now: float) -> tuple[bytes, CachedPrincipal | None]:
        """(cache key, the cached answer or None); raises for a token or audience that is refused before any lookup."""
        if len(token) > self._policy.max_token_bytes:
            raise InvalidArgument(reasons.TOKEN_TOO_LARGE, f"token exceeds {self._policy.max_token_bytes} bytes")
        if len(audience) > 1024:
            raise InvalidArgument(reasons.AUDIENCE_NOT_ALLOWED, "audience too long")
        key = cache_key(token, audience)
        hit = self._cache.get(key, now)
        if hit is None:
            self._misses.inc()
            return key, None
        # A cached answer is still subject to the issuer's key availability (fail closed when stale).
        self._issuers[hit.issuer].source.current()
        if self._revocations is not None:
            self._revocations.check(hit.token_id)
        self._hits.inc()
        return key, hit

    async def verify(self, token: str, audience: str = "") -> CachedPrincipal:
        """The verified answer for a token, with its Principal already serialised; raises CoreSDKError otherwise."""
        now = self._clock()
        key, hit = self._cached(token, audience, now)
        if hit is not None:
            return hit
        try:
            verdict = judge(token, audience, self._policy, self._configs.get, self._keys_of, now)
        except UnknownKid as unknown:
            # The kid may belong to a key published since the last fetch: refetch once (rate-limited by the source).
            if await self._issuers[unknown.issuer].source.refetch_for_unknown_kid() is None:
                raise
            verdict = judge(token, audience, self._policy, self._configs.get, self._keys_of, now)
        wire, token_id = principal_wire(verdict.claims)
        if self._revocations is not None:
            self._revocations.check(token_id)
        verified = CachedPrincipal(verdict.issuer.issuer, verdict.key.thumbprint, verdict.exp, wire, token_id)
        self._remember(key, verified)
        return verified

    def _remember(self, key: bytes, verified: CachedPrincipal) -> None:
        self._cache.put(key, verified)
        self._cache_size.set(len(self._cache))

    async def _verify_or_error(self, token: str, audience: str) -> CachedPrincipal | CoreSDKError:
        try:
            return await self.verify(token, audience)
        except CoreSDKError as err:
            return err

    async def verify_many(self, items: Sequence[tuple[str, str]]) -> list[CachedPrincipal | CoreSDKError]:
        """Each (token, audience)'s answer or refusal, in order. With worker processes, the cache misses of a large
        batch are judged there, in parallel; any token whose verdict needs this process (keys not current here, an
        unknown kid to refetch) or whose worker failed is judged here, by verify(), so nothing is skipped."""
        if self._workers is None or len(items) < _MIN_FOR_WORKERS:
            return [await self._verify_or_error(token, audience) for token, audience in items]
        now = self._clock()
        results: list[CachedPrincipal | CoreSDKError | None] = [None] * len(items)
        misses: list[tuple[int, bytes]] = []
        for i, (token, audience) in enumerate(items):
            try:
                key, hit = self._cached(token, audience, now)
            except CoreSDKError as err:
                results[i] = err
                continue
            if hit is None:
                misses.append((i, key))
            else:
                results[i] = hit
        if misses:
            keys = {}
            for issuer, trusted in self._issuers.items():
                try:
                    keys[issuer] = trusted.source.current()
                except CoreSDKError:
                    continue  # its tokens come back as "judge here", where they get the outage's own refusal
            try:
                outcomes = await self._workers.judge(
                    self._policy, self._configs, keys, [items[i] for i, _ in misses], now
                )
            except WorkerUnavailable as exc:
                log.warning("verification workers unavailable, judging the batch here: %s", exc)
                outcomes = [None] * len(misses)
            for (i, key), outcome in zip(misses, outcomes, strict=True):
                results[i] = await self._settle(items[i], key, outcome)
        answered = [r for r in results if r is not None]
        if len(answered) != len(items):
            raise AssertionError("a batch item was left without an answer")
        return answered

    async def _settle(
        self, item: tuple[str, str], key: bytes, outcome: Outcome | None
    ) -> CachedPrincipal | CoreSDKError:
        """Finish a worker's verdict here: the revocation list and the cache; None means judge it here."""
        if outcome is None:
            return await self._verify_or_error(*item)
        if isinstance(outcome, CoreSDKError):
            return outcome
        try:
            if self._revocations is not None:
                self._revocations.check(outcome.token_id)
        except CoreSDKError as err:
            return err
        self._remember(key, outcome)
        return outcome
