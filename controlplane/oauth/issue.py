"""Minting of the token pair: RFC 9068 access token (JWT) and an opaque refresh token stored only as a hash."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from controlplane.keys.manager import KeyManager
from controlplane.keys.mint import access_claims
from controlplane.keys.signer import ProcessSigners
from controlplane.secrets import ServerKeys, new_token
from controlplane.store.models import AccessRecord, RefreshRecord, TokenFamily
from coresdk.config.controlplane import ControlPlaneConfig


@dataclass(frozen=True)
class AccessToken:
    token: str
    record: AccessRecord


class PendingAccess:
    """An access token whose record is known (jti, times) while its signature is still being made."""

    def __init__(self, record: AccessRecord, signing: asyncio.Future[str]) -> None:
        self.record = record
        self.signing = signing  # the compact JWS

    async def signed(self) -> AccessToken:
        return AccessToken(await self.signing, self.record)

    def abandon(self) -> None:
        """The token will not be handed out: stop waiting for it (a signature already being made is discarded)."""
        self.signing.cancel()
        self.signing.add_done_callback(_discard)


def _discard(future: asyncio.Future[str]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved, so that asyncio does not log it as never retrieved


class TokenIssuer:
    """Access tokens signed here (for_family: the grants that run a transaction around it) or, for
    client_credentials, in signer processes (controlplane.keys.signer) when given, else in a thread pool."""

    def __init__(
        self,
        config: ControlPlaneConfig,
        keys: KeyManager,
        server_keys: ServerKeys,
        signers: ProcessSigners | None = None,
    ) -> None:
        self._config = config
        self._keys = keys
        self._server_keys = server_keys
        self.signers = signers
        # Without signer processes: RSA releases the GIL while it computes, so a pool lets signatures use a core.
        self._pool = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="sign")

    async def access_async(self, **kwargs: Any) -> AccessToken:
        return await (await self.begin_access(**kwargs)).signed()

    async def begin_access(
        self,
        *,
        client_id: str,
        subject: str,
        scopes: tuple[str, ...],
        tenant_id: str,
        roles: tuple[str, ...],
        family_id: str | None,
        now: float,
    ) -> PendingAccess:
        """Start the signature (signer process or pool); the record (drawn jti, issue and expiry times) is known at
        once, so the caller can record the token while it is being signed and hand it out when both are done."""
        jti = secrets.token_urlsafe(16)
        key = self._keys.active
        claims = self._claims(client_id, subject, scopes, tenant_id, roles, now, jti)
        if self.signers is not None:
            signing = await self.signers.submit(key, claims)
        else:
            signing = asyncio.get_running_loop().run_in_executor(self._pool, key.sign_jws, claims)
        return PendingAccess(self._record(jti, family_id, client_id, subject, scopes, now), signing)

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
        token = self._keys.active.sign_jws(self._claims(client_id, subject, scopes, tenant_id, roles, now, jti))
        return AccessToken(token, self._record(jti, family_id, client_id, subject, scopes, now))

    def _claims(
        self,
        client_id: str,
        subject: str,
        scopes: tuple[str, ...],
        tenant_id: str,
        roles: tuple[str, ...],
        now: float,
        jti: str,
    ) -> bytes:
        """The JSON an access token signs, whichever way it is signed."""
        return access_claims(
            issuer=self._config.issuer,
            subject=subject,
            audience=self._config.audience,
            client_id=client_id,
            scopes=scopes,
            ttl_seconds=self._config.access_token_ttl,
            tenant_id=tenant_id,
            roles=roles,
            now=now,
            jti=jti,
        )

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
