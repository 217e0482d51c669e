"""Signed Merkle checkpoints per chain, every N records or T seconds, mirrored to the off-box directory sink.

The signing key is Ed25519, derived from the server secret (so it survives restarts without being stored); its
verifier key is published. The directory sink receives the records (JSON Lines, O_APPEND, fsync) before the
checkpoint that covers them, so what is off the box always verifies on its own.

With several replicas only the leader (controlplane.store.leader) signs and ships; a replica that becomes leader
first reads where the previous one got to. The store never takes a second checkpoint at a size already signed.

Chains are independent: a chain that cannot be checkpointed or delivered (a chain id stored before ids had a
grammar, a sink that refuses one file) is logged, retried with its own back-off and skipped; every other chain goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import aiohttp
from nacl.signing import SigningKey

from controlplane.audit.sinks import Sink
from controlplane.secrets import AUDIT_SALT, derive_key
from controlplane.store.audit import AuditStore
from controlplane.store.leader import Leadership
from coresdk.audit import chain_id as chain_ids
from coresdk.audit.checkpoint import Checkpoint, CheckpointError, audit_origin, sign_checkpoint, verifier_key
from coresdk.audit.merkle import record_tree_leaves, root_from_leaf_hashes

log = logging.getLogger("coresdk.controlplane.audit")


def checkpoint_key(server_secret: bytes) -> SigningKey:
    return SigningKey(derive_key(server_secret, "checkpoint-ed25519", AUDIT_SALT))


class Checkpointer:
    def __init__(
        self,
        store: AuditStore,
        key: SigningKey,
        key_name: str,
        every_records: int,
        every_seconds: float,
        sinks: list[Sink],
        leadership: Leadership | None = None,
    ) -> None:
        self._store = store
        self._leadership = leadership
        self._was_leading = False
        self._key = key
        self.key_name = key_name
        self._every_records = every_records
        self._every_seconds = every_seconds
        self.sinks = sinks
        self._last: dict[str, tuple[int, float]] = {}
        # The newest checkpoint size this process signed per chain: a stored checkpoint older than this was replayed.
        self.highest_signed: dict[str, int] = {}
        # back-off per (sink, chain): one chain's failure never holds back another's delivery
        self._sink_retry_at: dict[tuple[str, str], float] = {}
        self._sink_backoff: dict[tuple[str, str], float] = {}
        self._refused: set[str] = set()  # chain ids outside the grammar, logged once each
        self._task: asyncio.Task[None] | None = None

    @property
    def verifier_key(self) -> str:
        return verifier_key(self.key_name, bytes(self._key.verify_key))

    @property
    def public_key(self) -> bytes:
        return bytes(self._key.verify_key)

    def origin(self, chain_id: str, kind: str = "") -> str:
        return audit_origin(self.key_name, chain_id, kind)

    def _valid(self, chain_id: str) -> bool:
        """Stored chains whose id has no grammar (ingested before it existed) are never signed nor delivered."""
        if chain_ids.is_valid(chain_id):
            return True
        if chain_id not in self._refused:
            self._refused.add(chain_id)
            log.error("audit chain id %r is outside the grammar: not checkpointed, not delivered to sinks", chain_id)
        return False

    async def start(self) -> None:
        await self._resume()
        self._task = asyncio.create_task(self._loop(), name="audit-checkpointer")

    async def _resume(self) -> None:
        """Where the store says the chains were checkpointed (by this process before, or by the previous leader)."""
        for chain_id, _ in await self._store.chains():
            latest = await self._store.latest_checkpoint(chain_id)
            if latest is not None:
                self._last[chain_id] = (int(latest["tree_size"]), time.monotonic())
                self.highest_signed[chain_id] = max(self.highest_signed.get(chain_id, 0), int(latest["tree_size"]))

    async def leading(self) -> bool:
        """True when this replica does the once-only work now; on taking over, first catch up with the store."""
        leading = self._leadership is None or await self._leadership.confirm()
        if leading and not self._was_leading and self._leadership is not None:
            await self._resume()
        self._was_leading = leading
        return leading

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            if await self.leading():
                await self.run_once(force=True)
        for sink in self.sinks:
            await sink.close()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            try:
                if await self.leading():
                    await self.run_once()
            except Exception:  # a failing store never stops the loop; try again next tick
                log.exception("checkpoint round failed")

    async def run_once(self, force: bool = False) -> list[str]:
        made = []
        chains = [(c, head) for c, head in await self._store.chains() if self._valid(c)]
        for chain_id, head in chains:
            size, when = self._last.get(chain_id, (0, 0.0))
            due = head - size >= self._every_records or (head > size and time.monotonic() - when >= self._every_seconds)
            if head > size and (due or force):
                try:
                    await self.checkpoint(chain_id)
                except CheckpointError as exc:  # this chain only; the others are still checkpointed
                    log.error("checkpoint of chain %r refused: %s", chain_id, exc)
                    continue
                made.append(chain_id)
        for sink in self.sinks:
            for chain_id, _ in chains:
                await self._feed(sink, chain_id)
        return made

    def sign(self, checkpoint: Checkpoint) -> str:
        return sign_checkpoint(checkpoint, self.key_name, self._key)

    async def checkpoint(self, chain_id: str) -> str:
        leaves = record_tree_leaves(await self._store.record_hashes(chain_id))
        cp = Checkpoint(self.origin(chain_id), len(leaves), root_from_leaf_hashes(leaves))
        note = sign_checkpoint(cp, self.key_name, self._key)
        stored = await self._store.add_checkpoint(chain_id, cp.tree_size, cp.root_hash.hex(), note)
        if stored != note:  # already signed at this size (a previous leader): keep that one, sign nothing new
            log.info("chain %r already has a checkpoint at size %d", chain_id, cp.tree_size)
        self._last[chain_id] = (cp.tree_size, time.monotonic())
        self.highest_signed[chain_id] = max(self.highest_signed.get(chain_id, 0), cp.tree_size)
        return stored

    async def _feed(self, sink: Sink, chain_id: str) -> None:
        """One chain's records after the sink's stored position, then the newest checkpoint they complete."""
        key = (sink.name, chain_id)
        if time.monotonic() < self._sink_retry_at.get(key, 0.0):
            return
        try:
            position = await self._store.sink_position(sink.name, chain_id)
            records = await self._store.chain_records(chain_id, position + 1, limit=1000)
            if records:
                await sink.deliver(chain_id, records)
                position = records[-1].seq
                await self._store.set_sink_position(sink.name, chain_id, position)
            cp_key = f"checkpoint:{sink.name}"
            sent = await self._store.sink_position(cp_key, chain_id)
            latest = await self._store.latest_checkpoint_upto(chain_id, position)
            if latest is not None and int(latest["tree_size"]) > sent:
                await sink.deliver_checkpoint(chain_id, str(latest["note"]), int(latest["tree_size"]))
                await self._store.set_sink_position(cp_key, chain_id, int(latest["tree_size"]))
        except (TimeoutError, OSError, aiohttp.ClientError) as exc:
            backoff = min(self._sink_backoff.get(key, 0.5) * 2, 30.0)
            self._sink_backoff[key] = backoff
            self._sink_retry_at[key] = time.monotonic() + backoff
            log.warning("audit sink %s failed for chain %s, retry in %.1fs: %s", sink.name, chain_id, backoff, exc)
            return
        self._sink_backoff.pop(key, None)
