"""Minting of the token pair: RFC 9068 access token (JWT) and an opaque refresh token stored only as a hash."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from controlplane.keys.manager import KeyManager
from controlplane.keys.mint import mint_access_token
from controlplane.secrets import ServerKeys, new_token
from controlplane.store.models import AccessRecord, RefreshRecord, TokenFamily
from coresdk.config.controlplane import ControlPlaneConfig


@dataclass(frozen=True)
class AccessToken:
    token: str
    record: AccessRecord


@dataclass(frozen=True)
class PendingAccess:
    """An access token whose record is known (jti, times) while its signature is still being made in a thread."""

    record: AccessRecord
    signed: asyncio.Future[AccessToken]

    def abandon(self) -> None:
        """The token will not be handed out: stop waiting for it (a signature already running is discarded)."""
        self.signed.cancel()
        self.signed.add_done_callback(_discard)


def _discard(future: asyncio.Future[AccessToken]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved, so that asyncio does not log it as never retrieved


class TokenIssuer:
    def __init__(self, config: ControlPlaneConfig, keys: KeyManager, server_keys: ServerKeys) -> None:
        self._config = config
        self._keys = keys
        self._server_keys = server_keys
        # RSA signing releases the GIL: a small pool lets signatures use every core while the loop serves I/O.
        self._signers = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="sign")

    async def access_async(self, **kwargs: Any) -> AccessToken:
        return await self.begin_access(**kwargs).signed

    def begin_access(self, **kwargs: Any) -> PendingAccess:
        """Start signing in the pool; the record (drawn jti, issue and expiry times) is known at once, so the caller
        can record the token while it is being signed and hand it out only when both are done."""
        jti = secrets.token_urlsafe(16)
        record = self._record(
            jti, kwargs["family_id"], kwargs["client_id"], kwargs["subject"], kwargs["scopes"], kwargs["now"]
        )
        loop = asyncio.get_running_loop()
        signed = loop.run_in_executor(self._signers, functools.partial(self.access, jti=jti, **kwargs))
        return PendingAccess(record, signed)

    def access(
        self,
        *,
        client_id: str,
        subject: str,
        scopes: tuple[str, ...],
        tenant_id: str,
        roles: tuple[str, ...],
        family_id: str | None,
        now: float,
        jti: str | None = None,
    ) -> AccessToken:
        jti = jti or secrets.token_urlsafe(16)
        ttl = self._config.access_token_ttl
        token = mint_access_token(
            self._keys.active,
            issuer=self._config.issuer,
            subject=subject,
            audience=self._config.audience,
            client_id=client_id,
            scopes=scopes,
            ttl_seconds=ttl,
            tenant_id=tenant_id,
            roles=roles,
            now=now,
            jti=jti,
        )
        return AccessToken(token, self._record(jti, family_id, client_id, subject, scopes, now))

    def _record(
        self, jti: str, family_id: str | None, client_id: str, subject: str, scopes: tuple[str, ...], now: float
    ) -> AccessRecord:
        """What the store keeps of an access token: the same whether it is made before or with the signature."""
        issued = float(int(now))
        return AccessRecord(jti, family_id, client_id, subject, scopes, issued, issued + self._config.access_token_ttl)

    def refresh(self, family: TokenFamily, now: float) -> tuple[str, RefreshRecord]:
        raw = new_token()
        idle_until = min(now + self._config.refresh_idle_ttl, family.absolute_expires_at)
        return raw, RefreshRecord(self._server_keys.hash_token(raw), family.id, now, idle_until)

    def for_family(self, family: TokenFamily, now: float, scopes: tuple[str, ...] | None = None) -> AccessToken:
        return self.access(
            client_id=family.client_id,
            subject=family.subject,
            scopes=scopes if scopes is not None else family.scopes,
            tenant_id=family.tenant_id,
            roles=family.roles,
            family_id=family.id,
            now=now,
        )

    def response(self, access: AccessToken, refresh_token: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "access_token": access.token,
            "token_type": "Bearer",
            "expires_in": int(access.record.expires_at - access.record.issued_at),
            "scope": " ".join(access.record.scopes),
        }
        if refresh_token is not None:
            body["refresh_token"] = refresh_token
        return body

    def seal_response(self, body: dict[str, Any], presented_hash: str) -> str:
        return self._server_keys.seal(json.dumps(body).encode(), f"successor:{presented_hash}")

    def open_response(self, blob: str, presented_hash: str) -> dict[str, Any]:
        value = json.loads(self._server_keys.open(blob, f"successor:{presented_hash}"))
        assert isinstance(value, dict)
        return value
