"""One issuer's JSON Web Key Set: fetched, validated, cached and kept fresh; never silently trusted when stale.

Freshness: the set is fresh for max-age (Cache-Control, clamped to the configured bounds) and refreshed in the
background at 80 % of that. If the IdP is down, the last good set stays usable for CORESDK_JWKS_MAX_STALE seconds
past its expiry; after that `current()` raises Unavailable and every token of this issuer is refused.

An unknown kid may trigger one refetch, single-flight, at most once per cooldown, so a flood of forged kids cannot
turn the sidecar into a load generator against the IdP.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import ssl
import time
from collections.abc import Callable

import aiohttp

from coresdk import reasons
from coresdk.config.engine import IssuerConfig, JwksSettings
from coresdk.errors import Unavailable
from coresdk.jose.jwk import KeySet, KeySetRejected, parse_jwks
from coresdk.metrics import EngineMetrics

log = logging.getLogger("coresdk.jwks")
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?:,|$)", re.IGNORECASE)
_NO_CACHE = re.compile(r"(?:^|,)\s*(no-cache|no-store)\s*(?:,|$)", re.IGNORECASE)

KeyChangeListener = Callable[[str, frozenset[str]], None]


class JwksFetchError(Exception):
    pass


class JwksSource:
    def __init__(
        self,
        issuer: IssuerConfig,
        settings: JwksSettings,
        metrics: EngineMetrics,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer = issuer
        self._settings = settings
        self._metrics = metrics
        self._clock = clock
        self._keyset: KeySet | None = None
        self._fresh_until = 0.0
        self._fetched_at = 0.0
        self._last_forced = -float("inf")
        self._inflight: asyncio.Task[KeySet | None] | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._listeners: list[KeyChangeListener] = []

    def on_change(self, listener: KeyChangeListener) -> None:
        """listener(issuer, live_thumbprints) runs whenever the set of usable keys changes."""
        self._listeners.append(listener)

    @property
    def usable_until(self) -> float:
        return self._fresh_until + self._settings.max_stale_seconds if self._keyset else 0.0

    def ready(self) -> bool:
        return self._keyset is not None and self._clock() < self.usable_until

    def current(self) -> KeySet:
        keyset = self._keyset
        if keyset is None or self._clock() >= self.usable_until:
            raise Unavailable(reasons.KEYS_UNAVAILABLE, "signing keys for this issuer are not available")
        return keyset

    async def start(self) -> None:
        ssl_ctx: ssl.SSLContext | bool = True
        if self._settings.ca_file is not None:
            ssl_ctx = ssl.create_default_context(cafile=str(self._settings.ca_file))
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self._settings.timeout_seconds),
            connector=aiohttp.TCPConnector(ssl=ssl_ctx, limit=4),
            headers={"Accept": "application/jwk-set+json, application/json"},
        )
        await self._fetch_and_install("initial")
        self._refresher = asyncio.create_task(self._refresh_loop(), name=f"jwks-refresh {self.issuer.issuer}")

    async def stop(self) -> None:
        for task in (self._refresher, self._inflight):
            if task is not None:
                task.cancel()
        for task in (self._refresher, self._inflight):
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self._session is not None:
            await self._session.close()

    async def refetch_for_unknown_kid(self) -> KeySet | None:
        """Refetch once per cooldown; concurrent callers share one request. None if the cooldown forbids it."""
        if self._inflight is not None and not self._inflight.done():
            return await asyncio.shield(self._inflight)
        now = self._clock()
        if now - self._last_forced < self._settings.refetch_cooldown_seconds:
            return None
        self._last_forced = now
        self._inflight = asyncio.create_task(self._fetch_and_install("unknown_kid"))
        return await asyncio.shield(self._inflight)

    async def _refresh_loop(self) -> None:
        failures = 0
        while True:
            if self._keyset is None or failures:
                delay = min(float(2 ** min(failures, 16)), float(self._settings.retry_max_seconds))
            else:
                refresh_at = self._fetched_at + 0.8 * (self._fresh_until - self._fetched_at)
                delay = max(0.5, refresh_at - self._clock())
            await asyncio.sleep(delay)
            if self._keyset is not None:
                self._metrics.jwks_age.labels(self.issuer.issuer).set(self._clock() - self._fetched_at)
            result = await self._fetch_and_install("refresh")
            failures = 0 if result is not None else failures + 1

    async def _fetch_and_install(self, trigger: str) -> KeySet | None:
        try:
            keyset, max_age = await self._fetch()
        except (JwksFetchError, KeySetRejected) as exc:
            self._metrics.jwks_fetches.labels(self.issuer.issuer, trigger, "error").inc()
            log.warning("jwks fetch failed issuer=%s trigger=%s error=%s", self.issuer.issuer, trigger, exc)
            return None
        self._metrics.jwks_fetches.labels(self.issuer.issuer, trigger, "ok").inc()
        ttl = min(max(max_age, self._settings.cache_min_seconds), self._settings.cache_max_seconds)
        old = self._keyset
        now = self._clock()
        self._keyset = keyset
        self._fetched_at = now
        self._fresh_until = now + ttl
        self._metrics.jwks_keys.labels(self.issuer.issuer).set(len(keyset.keys))
        self._metrics.jwks_skipped_keys.labels(self.issuer.issuer).set(len(keyset.skipped))
        self._metrics.jwks_age.labels(self.issuer.issuer).set(0)
        for kid, why in keyset.skipped:
            log.info("jwks key skipped issuer=%s kid=%s reason=%s", self.issuer.issuer, kid, why)
        if old is None or old.thumbprints != keyset.thumbprints:
            log.info(
                "jwks keys installed issuer=%s keys=%d kids=%s ttl=%ds",
                self.issuer.issuer,
                len(keyset.keys),
                ",".join(k.kid or "-" for k in keyset.keys),
                ttl,
            )
            for listener in self._listeners:
                listener(self.issuer.issuer, keyset.thumbprints)
        return keyset

    async def _fetch(self) -> tuple[KeySet, int]:
        assert self._session is not None, "start() first"
        limit = self._settings.max_bytes
        try:
            async with self._session.get(self.issuer.jwks_uri, allow_redirects=False) as resp:
                if resp.status != 200:
                    raise JwksFetchError(f"HTTP {resp.status}")
                if resp.content_length is not None and resp.content_length > limit:
                    raise JwksFetchError(f"JWKS larger than {limit} bytes")
                body = bytearray()
                async for chunk in resp.content.iter_chunked(16384):
                    body.extend(chunk)
                    if len(body) > limit:
                        raise JwksFetchError(f"JWKS larger than {limit} bytes")
                cache_control = resp.headers.get("Cache-Control", "")
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise JwksFetchError(f"{type(exc).__name__}: {exc}") from None
        try:
            document = json.loads(bytes(body).decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise JwksFetchError("JWKS is not valid JSON") from exc
        keyset = parse_jwks(document)
        max_age = 0
        if not _NO_CACHE.search(cache_control):
            match = _MAX_AGE.search(cache_control)
            max_age = int(match.group(1)) if match else 0
        return keyset, max_age
