"""Signing keys, sealed (controlplane.secrets), at most one active; rotation retires the previous active key."""

from __future__ import annotations

from typing import Any, Protocol

from controlplane.store.db import Tx


class SigningKeyStore(Protocol):
    async def signing_keys(self) -> list[dict[str, Any]]: ...
    async def add_signing_key(self, kid: str, private_key_enc: str, now: float, make_active: bool) -> None: ...


class SqlSigningKeyStore:
    def __init__(self, tx: Tx) -> None:
        self._tx = tx

    async def signing_keys(self) -> list[dict[str, Any]]:
        return [dict(r) for r in await self._tx.fetch("SELECT * FROM signing_keys ORDER BY created_at")]

    async def add_signing_key(self, kid: str, private_key_enc: str, now: float, make_active: bool) -> None:
        await self._tx.serialize("coresdk-signing-keys")
        if make_active:
            await self._tx.execute(
                "UPDATE signing_keys SET status = 'retired', retired_at = $1 WHERE status = 'active'", now
            )
        await self._tx.execute(
            "INSERT INTO signing_keys (kid, private_key_enc, status, created_at) VALUES ($1, $2, $3, $4)",
            kid,
            private_key_enc,
            "active" if make_active else "retired",
            now,
        )
