"""Signing keys kept in the store (sealed), one active; retired keys stay published while their tokens may live.

Rotation makes a new active key at once; the previous key stays in the JWKS for the longest access-token lifetime
plus leeway, so no live token breaks.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from controlplane.keys.signing import SigningKey, load_signing_key
from controlplane.secrets import ServerKeys
from controlplane.store.store import Store
from coresdk.config.controlplane import MAX_ACCESS_TTL

RETIRED_KEY_PUBLISHED_FOR = MAX_ACCESS_TTL + 120


def _pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


class KeyManager:
    def __init__(self, store: Store, server_keys: ServerKeys) -> None:
        self._store = store
        self._server_keys = server_keys
        self._keys: dict[str, tuple[SigningKey, str, float | None]] = {}
        self._active: SigningKey | None = None

    async def start(self, initial_key_path: Path | None, dev_key_path: Path | None) -> None:
        """Load sealed keys; import CORESDK_SIGNING_KEY_PATH (or the dev key) when it is not in the store yet."""
        await self.reload()
        source = initial_key_path or (dev_key_path if not self._keys else None)
        if source is not None:
            key = load_signing_key(source, generate_if_missing=initial_key_path is None)
            if key.kid not in self._keys:
                await self._add(key, make_active=True)

    async def reload(self) -> None:
        keys: dict[str, tuple[SigningKey, str, float | None]] = {}
        active = None
        async with self._store.transaction() as tx:
            rows = await tx.keys.signing_keys()
        for row in rows:
            pem = self._server_keys.open(row["private_key_enc"], f"signing_key:{row['kid']}")
            private = serialization.load_pem_private_key(pem, password=None)
            assert isinstance(private, rsa.RSAPrivateKey)
            key = SigningKey.from_private_key(private)
            retired_at = None if row["retired_at"] is None else float(row["retired_at"])
            keys[key.kid] = (key, row["status"], retired_at)
            if row["status"] == "active":
                active = key
        self._keys = keys
        self._active = active

    async def _add(self, key: SigningKey, make_active: bool) -> None:
        sealed = self._server_keys.seal(_pem(key.private_key), f"signing_key:{key.kid}")
        now = time.time()
        async with self._store.transaction() as tx:
            await tx.keys.add_signing_key(key.kid, sealed, now, make_active)
            await tx.events.record("signing_key_added", now, detail={"kid": key.kid, "active": make_active})
        await self.reload()

    async def rotate(self) -> SigningKey:
        key = SigningKey.from_private_key(rsa.generate_private_key(public_exponent=65537, key_size=3072))
        await self._add(key, make_active=True)
        return key

    @property
    def active(self) -> SigningKey:
        if self._active is None:
            raise RuntimeError("no active signing key")
        return self._active

    def public_keys(self, now: float) -> list[SigningKey]:
        """The active key and every retired key whose tokens may still be alive."""
        out = []
        for key, status, retired_at in self._keys.values():
            if status == "active" or (retired_at is not None and now - retired_at < RETIRED_KEY_PUBLISHED_FOR):
                out.append(key)
        return out

    def describe(self) -> list[dict[str, Any]]:
        return [
            {"kid": k.kid, "status": status, "retired_at": retired_at} for k, status, retired_at in self._keys.values()
        ]
