"""Signing keys kept in the store (sealed); the same rows give every replica the same JWKS and the same signer.

Publish, then activate: a rotation stores the new key with an activation time one JWKS max-age ahead
(CORESDK_KEY_ACTIVATION_DELAY). From that moment it is in every replica's JWKS, but no replica signs with it until
the activation time, so a sidecar that cached the JWKS just before the rotation has had time to fetch it again.
The previous key signs until then and stays published for the longest access-token lifetime plus leeway after.

Every replica re-reads the key set when one of them changes it (PostgreSQL LISTEN/NOTIFY) and, as a safety net for
a lost notification, every few seconds; only keys not seen before are unsealed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controlplane.keys.signing import DEFAULT_ALG, SigningKey, load_pem_key, load_signing_key
from controlplane.secrets import ServerKeys
from controlplane.store.signing_keys import KEYS_CHANNEL
from controlplane.store.store import Store
from coresdk.config.controlplane import JWKS_MAX_AGE, MAX_ACCESS_TTL

RETIRED_KEY_PUBLISHED_FOR = MAX_ACCESS_TTL + 120
REFRESH_SECONDS = 2.0  # the safety net: a missed notification is made up for within this long
log = logging.getLogger("coresdk.controlplane.keys")


@dataclass(frozen=True)
class StoredKey:
    key: SigningKey
    activates_at: float
    retired_at: float | None  # the moment a later key took over (may be in the future during a rotation)


class KeyManager:
    def __init__(
        self,
        store: Store,
        server_keys: ServerKeys,
        activation_delay: float = JWKS_MAX_AGE,
        alg: str = DEFAULT_ALG,
    ) -> None:
        """`alg` (CORESDK_SIGNING_ALG) is what new keys are made for; a stored key keeps the algorithm it has."""
        self._store = store
        self._server_keys = server_keys
        self._activation_delay = activation_delay
        self.alg = alg
        self._keys: dict[str, StoredKey] = {}
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self.reloads = 0

    async def start(self, initial_key_path: Path | None, dev_key_path: Path | None) -> None:
        """Load sealed keys; import CORESDK_SIGNING_KEY_PATH (or the dev key) when it is not in the store yet."""
        await self.reload()
        source = initial_key_path or (dev_key_path if not self._keys else None)
        if source is not None:
            key = load_signing_key(source, generate_if_missing=initial_key_path is None, alg=self.alg)
            if key.kid not in self._keys:
                # the first key signs at once; a new file replacing a key in use is published first, like a rotation
                await self._add(key, immediately=not self._keys)

    async def watch(self) -> None:
        """Follow changes other replicas make (NOTIFY, then the periodic check) until stop()."""
        self._task = asyncio.create_task(self._follow(), name="signing-key-refresh")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _follow(self) -> None:
        listening = False
        while True:
            if not listening:
                listening = await self._store.db.listen(KEYS_CHANNEL, lambda _payload: self._changed.set())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), REFRESH_SECONDS)
            self._changed.clear()
            try:
                await self.reload()
            except Exception as exc:  # keep the keys we have, try again next round: never stop following
                log.warning("signing keys not re-read: %s: %s", type(exc).__name__, exc)
                listening = False

    async def reload(self) -> None:
        async with self._store.transaction() as tx:
            rows = await tx.keys.signing_keys()
        keys: dict[str, StoredKey] = {}
        for row in rows:
            known = self._keys.get(row["kid"])
            key = known.key if known is not None else self._unseal(row)
            activates_at = row.get("activates_at")
            keys[key.kid] = StoredKey(
                key,
                float(row["created_at"] if activates_at is None else activates_at),
                None if row["retired_at"] is None else float(row["retired_at"]),
            )
        self._keys = keys
        self.reloads += 1

    def _unseal(self, row: dict[str, Any]) -> SigningKey:
        """The key with the algorithm stored beside it (NULL only before migration 6 ran: those were RS256)."""
        pem = self._server_keys.open(row["private_key_enc"], f"signing_key:{row['kid']}")
        return load_pem_key(pem, row.get("alg") or DEFAULT_ALG)

    async def _add(self, key: SigningKey, immediately: bool) -> float:
        sealed = self._server_keys.seal(key.pem(), f"signing_key:{key.kid}")
        now = time.time()
        activates_at = now if immediately else now + self._activation_delay
        async with self._store.transaction() as tx:
            if await tx.keys.add_signing_key(key.kid, key.alg, sealed, now, activates_at):
                detail = {"kid": key.kid, "alg": key.alg, "activates_at": activates_at}
                await tx.events.record("signing_key_added", now, detail=detail)
        await self.reload()
        return activates_at

    async def rotate(self) -> tuple[SigningKey, float]:
        """A new key for the configured algorithm, published now and signing from the returned time everywhere."""
        key = await asyncio.to_thread(SigningKey.generate, self.alg)  # RSA-3072 generation takes ~1 s
        return key, await self._add(key, immediately=False)

    def signing_key(self, now: float) -> SigningKey:
        """The newest key activated by `now`."""
        live = [k for k in self._keys.values() if k.activates_at <= now]
        if not live:
            raise RuntimeError("no active signing key")
        return max(live, key=lambda k: k.activates_at).key

    @property
    def active(self) -> SigningKey:
        return self.signing_key(time.time())

    def public_keys(self, now: float) -> list[SigningKey]:
        """Keys still to sign, the signing key, and retired keys whose tokens may still be alive."""
        return [
            k.key for k in self._keys.values() if k.retired_at is None or now - k.retired_at < RETIRED_KEY_PUBLISHED_FOR
        ]

    def describe(self, now: float | None = None) -> list[dict[str, Any]]:
        now = time.time() if now is None else now
        signing = self.signing_key(now).kid if any(k.activates_at <= now for k in self._keys.values()) else None

        def status(k: StoredKey) -> str:
            if k.key.kid == signing:
                return "active"
            return "next" if k.activates_at > now else "retired"

        return [
            {
                "kid": k.key.kid,
                "alg": k.key.alg,
                "status": status(k),
                "activates_at": k.activates_at,
                "retired_at": k.retired_at,
            }
            for k in self._keys.values()
        ]
