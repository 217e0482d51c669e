"""An AppRole session with Vault/OpenBao: login at start, renewal before expiry, re-login at max TTL or revocation.

hvac is synchronous, so every call runs in a worker thread. The token lives in an hvac client that is replaced
whole on re-login; a call that meets a dead token re-logs in once and is retried, so in-flight calls do not fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TypeVar

import hvac
import requests
from hvac import exceptions as hvac_errors

from coresdk import reasons
from coresdk.config.sidecar import VaultSettings
from coresdk.errors import NotFound, PermissionDenied, Unavailable
from coresdk.metrics import EngineMetrics

log = logging.getLogger("coresdk.sidecar.vault")
T = TypeVar("T")


class VaultSession:
    def __init__(self, settings: VaultSettings, metrics: EngineMetrics) -> None:
        self._settings = settings
        self._metrics = metrics
        self._client: hvac.Client | None = None
        self._secret_id: str | None = None
        self._lease_ttl = 0.0
        self._renew_task: asyncio.Task[None] | None = None
        self._login_lock = asyncio.Lock()
        self.logins = 0
        self.renewals = 0

    def _new_client(self, token: str | None = None) -> hvac.Client:
        verify: bool | str = str(self._settings.ca_file) if self._settings.ca_file else True
        return hvac.Client(
            url=self._settings.addr,
            token=token,
            namespace=self._settings.namespace,
            verify=verify,
            timeout=self._settings.timeout_seconds,
        )

    def _resolve_secret_id(self) -> str:
        s = self._settings
        if s.secret_id is not None:
            return s.secret_id
        if s.secret_id_file is not None:
            return s.secret_id_file.read_text().strip()
        assert s.wrapped_secret_id is not None
        # A response-wrapped secret ID is single-use: unwrapping it a second time fails, which exposes interception.
        unwrapped = self._new_client(s.wrapped_secret_id).sys.unwrap()
        return str(unwrapped["data"]["secret_id"])

    def _login_sync(self) -> tuple[hvac.Client, float]:
        if self._secret_id is None:
            self._secret_id = self._resolve_secret_id()
        client = self._new_client()
        resp = client.auth.approle.login(role_id=self._settings.role_id, secret_id=self._secret_id)
        return client, float(resp["auth"]["lease_duration"])

    async def login(self) -> None:
        async with self._login_lock:
            client, ttl = await asyncio.to_thread(self._login_sync)
            self._client, self._lease_ttl = client, ttl
            self.logins += 1
            self._metrics.vault_logins.inc()
            log.info("vault login ok ttl=%ds", ttl)

    async def start(self) -> None:
        try:
            await self.login()
        except Exception as exc:  # outage at start: calls fail closed until a later login succeeds
            log.warning("vault login failed at start: %s", type(exc).__name__)
        self._renew_task = asyncio.create_task(self._lifecycle(), name="vault-token")

    async def stop(self) -> None:
        if self._renew_task is not None:
            self._renew_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renew_task

    async def _lifecycle(self) -> None:
        while True:
            ttl = self._lease_ttl or 5.0
            await asyncio.sleep(max(0.5, ttl * 2 / 3))
            try:
                if self._client is None:
                    await self.login()
                    continue
                client = self._client
                resp = await asyncio.to_thread(client.auth.token.renew_self)
                new_ttl = float(resp["auth"]["lease_duration"])
                self.renewals += 1
                self._metrics.vault_renewals.inc()
                if new_ttl < ttl / 2:  # capped by the max TTL: log in again before it runs out
                    await self.login()
                else:
                    self._lease_ttl = new_ttl
            except Exception as exc:
                log.warning("vault token renewal failed (%s); logging in again", type(exc).__name__)
                with contextlib.suppress(Exception):
                    await self.login()

    async def call(self, fn: Callable[[hvac.Client], T]) -> T:
        """Run fn(client) in a thread, mapping Vault's answers to typed errors; one re-login on a dead token."""
        for attempt in range(2):
            client = self._client
            if client is None:
                try:
                    await self.login()
                except Exception:
                    raise Unavailable(reasons.VAULT_UNAVAILABLE, "Vault is unreachable") from None
                client = self._client
                assert client is not None
            try:
                result = await asyncio.to_thread(fn, client)
                self._metrics.vault_requests.labels("ok").inc()
                return result
            except hvac_errors.InvalidPath:
                self._metrics.vault_requests.labels("not_found").inc()
                raise NotFound(reasons.SECRET_NOT_FOUND, "no secret at this path") from None
            except hvac_errors.Forbidden:
                self._metrics.vault_requests.labels("forbidden").inc()
                if attempt == 0:
                    with contextlib.suppress(Exception):
                        await self.login()
                    continue
                raise PermissionDenied(reasons.VAULT_FORBIDDEN, "Vault refused the request") from None
            except (
                hvac_errors.VaultDown,
                hvac_errors.InternalServerError,
                hvac_errors.BadGateway,
                requests.exceptions.RequestException,
            ):
                raise Unavailable(reasons.VAULT_UNAVAILABLE, "Vault is unreachable") from None
        raise Unavailable(reasons.VAULT_UNAVAILABLE, "Vault is unreachable")

    def ready(self) -> bool:
        return self._client is not None

    @property
    def lease_ttl(self) -> float:
        return self._lease_ttl
