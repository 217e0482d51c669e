"""The control plane's revocation list, polled outbound, so a revoked access token is refused within seconds.

Fail closed: if the feed has not been read successfully for CORESDK_REVOCATION_MAX_STALE seconds, the sidecar
cannot know what was revoked and answers UNAVAILABLE instead of accepting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import aiohttp

from coresdk import reasons
from coresdk.config.engine import RevocationSettings
from coresdk.errors import Unauthenticated, Unavailable

log = logging.getLogger("coresdk.revocations")


class RevocationFeed:
    def __init__(self, settings: RevocationSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self._settings = settings
        self._clock = clock
        self._revoked: dict[str, float] = {}
        self._since = 0
        self._last_success: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    def ready(self) -> bool:
        return self._last_success is not None and self._clock() - self._last_success < self._settings.max_stale_seconds

    def check(self, jti: str) -> None:
        if not self.ready():
            raise Unavailable(reasons.REVOCATIONS_UNAVAILABLE, "the revocation list is not current")
        if jti and jti in self._revoked:
            raise Unauthenticated(reasons.TOKEN_REVOKED, "token has been revoked")

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=5),
            headers={"Authorization": f"Bearer {self._settings.token}"},
        )
        await self._poll_once()
        self._task = asyncio.create_task(self._loop(), name="revocation-feed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._session is not None:
            await self._session.close()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._settings.poll_seconds)
            await self._poll_once()

    async def _poll_once(self) -> None:
        assert self._session is not None
        try:
            while True:
                async with self._session.get(
                    self._settings.url, params={"since": str(self._since)}, allow_redirects=False
                ) as resp:
                    if resp.status != 200:
                        raise aiohttp.ClientResponseError(resp.request_info, (), status=resp.status)
                    body = await resp.json()
                items = body["revocations"]
                now = time.time()
                for item in items:
                    self._revoked[str(item["jti"])] = float(item["exp"])
                self._since = int(body["next_since"])
                self._revoked = {j: exp for j, exp in self._revoked.items() if exp > now - 120}
                if len(items) < 1000:
                    break
            self._last_success = self._clock()
        except (TimeoutError, aiohttp.ClientError, OSError, KeyError, ValueError, TypeError) as exc:
            log.warning("revocation poll failed error=%s", type(exc).__name__)
