"""Signing keys, sealed (controlplane.secrets), each with the algorithm it signs (never changed once stored). Each key has a time from which it signs (`activates_at`); the key
that signs at a moment is the newest one activated by then, so every replica picks the same key from the same rows
without anyone having to flip a flag at the right time. A rotation publishes the new key first and retires the
previous one at the moment the new one takes over.
"""

from __future__ import annotations

from typing import Any, Protocol

from controlplane.store.db import Tx

KEYS_CHANNEL = "coresdk_signing_keys"  # NOTIFY channel: a replica that changes the key set tells the others


class SigningKeyStore(Protocol):
    async def signing_keys(self) -> list[dict[str, Any]]: ...
    async def add_signing_key(
        self, kid: str, alg: str, private_key_enc: str, now: float, activates_at: float
    ) -> bool: ...


class SqlSigningKeyStore:
    def __init__(self, tx: Tx) -> None:
        self._tx = tx

    async def signing_keys(self) -> list[dict[str, Any]]:
        return [dict(r) for r in await self._tx.fetch("SELECT * FROM signing_keys ORDER BY created_at")]

    async def add_signing_key(self, kid: str, alg: str, private_key_enc: str, now: float, activates_at: float) -> bool:
        """Add a key that signs `alg` tokens from `activates_at`; the keys still to sign then are retired at that moment.
        False (and no change) when the kid is already stored: replicas starting together import one key once."""
        await self._tx.serialize("coresdk-signing-keys")
        if await self._tx.fetchrow("SELECT kid FROM signing_keys WHERE kid = $1", kid):
            return False
        await self._tx.execute(
            "UPDATE signing_keys SET status = 'retired', retired_at = $1 WHERE status = 'active'", activates_at
        )
        await self._tx.execute(
            "INSERT INTO signing_keys (kid, alg, private_key_enc, status, created_at, activates_at) "
            "VALUES ($1, $2, $3, 'active', $4, $5)",
            kid,
            alg,
            private_key_enc,
            now,
            activates_at,
        )
        if self._tx.dialect == "postgres":
            await self._tx.execute("SELECT pg_notify($1, $2)", KEYS_CHANNEL, kid)
        return True
