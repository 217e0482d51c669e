"""Secret resolution from KV v2: allowlist first, then a per (path, version) cache with single-flight loading and
a bounded stale window during Vault outages; after it, UNAVAILABLE. Values never reach logs or errors."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from coresdk import reasons
from coresdk.config.sidecar import VaultSettings
from coresdk.errors import InvalidArgument, NotFound, PermissionDenied, Unavailable
from sidecar.secrets.vault import VaultSession

_PATH = re.compile(r"[A-Za-z0-9._\-]+(/[A-Za-z0-9._\-]+)*")


@dataclass(frozen=True)
class Secret:
    data: dict[str, str]
    version: int
    created_time: str
    fetched_at: float
    stale: bool = False


def check_path(path: str, prefixes: tuple[str, ...]) -> str:
    if not path or len(path) > 512 or not _PATH.fullmatch(path) or any(p in (".", "..") for p in path.split("/")):
        raise InvalidArgument(reasons.INVALID_SECRET_PATH, "secret path must be segments of letters, digits, . _ -")
    if not any(path == p or path.startswith(p + "/") for p in prefixes):
        raise PermissionDenied(reasons.SECRET_PATH_NOT_ALLOWED, "this path is outside CORESDK_SECRET_PATHS")
    return path


class SecretResolver:
    def __init__(
        self, session: VaultSession, settings: VaultSettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._session = session
        self._settings = settings
        self._clock = clock
        self._cache: dict[tuple[str, int], Secret] = {}
        self._inflight: dict[tuple[str, int], asyncio.Future[Secret]] = {}
        self.vault_reads = 0

    async def resolve(self, path: str, version: int = 0, internal: bool = False) -> Secret:
        """internal=True is the sidecar's own read of its data key: never reachable from ResolveSecret."""
        if not internal:
            check_path(path, self._settings.allowed_prefixes)
            if path == self._settings.data_key_path.strip("/"):
                raise PermissionDenied(reasons.SECRET_PATH_NOT_ALLOWED, "the encryption data key is never served")
        if version < 0:
            raise InvalidArgument(reasons.INVALID_SECRET_PATH, "version must be 0 (latest) or positive")
        key = (path, version)
        cached = self._cache.get(key)
        now = self._clock()
        if cached is not None and now - cached.fetched_at < self._settings.cache_ttl_seconds:
            return cached
        if key in self._inflight:
            return await asyncio.shield(self._inflight[key])
        future: asyncio.Future[Secret] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            secret = await self._load(path, version)
            self._cache[key] = secret
            future.set_result(secret)
            return secret
        except Unavailable as exc:
            if (
                cached is not None
                and now - cached.fetched_at < self._settings.cache_ttl_seconds + self._settings.max_stale_seconds
            ):
                stale = Secret(cached.data, cached.version, cached.created_time, cached.fetched_at, stale=True)
                future.set_result(stale)
                return stale
            future.set_exception(exc)
            raise
        except Exception as exc:
            future.set_exception(exc)
            raise
        finally:
            self._inflight.pop(key, None)
            if future.done() and not future.cancelled():
                future.exception()  # mark retrieved

    async def _load(self, path: str, version: int) -> Secret:
        mount = self._settings.kv_mount

        def read(client: Any) -> dict[str, Any]:
            result: dict[str, Any] = client.secrets.kv.v2.read_secret_version(
                path=path, version=version or None, mount_point=mount, raise_on_deleted_version=True
            )
            return result

        self.vault_reads += 1
        resp = await self._session.call(read)
        data = resp["data"]["data"] or {}
        meta = resp["data"]["metadata"]
        if meta.get("destroyed") or meta.get("deletion_time"):
            raise NotFound(reasons.SECRET_NOT_FOUND, "this secret version was deleted")
        return Secret(
            {str(k): str(v) for k, v in data.items()}, int(meta["version"]), str(meta["created_time"]), self._clock()
        )
