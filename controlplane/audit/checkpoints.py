"""Signed Merkle checkpoints per chain, every N records or T seconds, mirrored to the off-box directory sink.

The signing key is Ed25519, derived from the server secret (so it survives restarts without being stored); its
verifier key is published. The directory sink receives the records (JSON Lines, O_APPEND, fsync) before the
checkpoint that covers them, so what is off the box always verifies on its own.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import time
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from nacl.signing import SigningKey

from controlplane.store.audit import AuditStore
from coresdk.audit.checkpoint import Checkpoint, sign_checkpoint, verifier_key
from coresdk.audit.merkle import record_tree_leaves, root_from_leaf_hashes

log = logging.getLogger("coresdk.controlplane.audit")
SINK = "directory"


def checkpoint_key(server_secret: bytes) -> SigningKey:
    seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"coresdk-audit-v1", info=b"checkpoint-ed25519").derive(
        server_secret
    )
    return SigningKey(seed)


class Checkpointer:
    def __init__(
        self,
        store: AuditStore,
        key: SigningKey,
        key_name: str,
        every_records: int,
        every_seconds: float,
        sink_dir: Path | None,
    ) -> None:
        self._store = store
        self._key = key
        self.key_name = key_name
        self._every_records = every_records
        self._every_seconds = every_seconds
        self._sink_dir = sink_dir
        self._last: dict[str, tuple[int, float]] = {}
        # The newest checkpoint size this process signed per chain: a stored checkpoint older than this was replayed.
        self.highest_signed: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def verifier_key(self) -> str:
        return verifier_key(self.key_name, bytes(self._key.verify_key))

    @property
    def public_key(self) -> bytes:
        return bytes(self._key.verify_key)

    def origin(self, chain_id: str) -> str:
        return f"{self.key_name}/audit/{chain_id}"

    async def start(self) -> None:
        for chain_id, _ in await self._store.chains():
            latest = await self._store.latest_checkpoint(chain_id)
            if latest is not None:
                self._last[chain_id] = (int(latest["tree_size"]), time.monotonic())
                self.highest_signed[chain_id] = int(latest["tree_size"])
        self._task = asyncio.create_task(self._loop(), name="audit-checkpointer")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.run_once(force=True)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            try:
                await self.run_once()
            except Exception:  # a failing sink or store never stops appends; try again next tick
                log.exception("checkpoint round failed")

    async def run_once(self, force: bool = False) -> list[str]:
        made = []
        for chain_id, head in await self._store.chains():
            size, when = self._last.get(chain_id, (0, 0.0))
            due = head - size >= self._every_records or (head > size and time.monotonic() - when >= self._every_seconds)
            if head > size and (due or force):
                await self._sink_records(chain_id)
                await self.checkpoint(chain_id)
                made.append(chain_id)
        return made

    async def checkpoint(self, chain_id: str) -> str:
        leaves = record_tree_leaves(await self._store.record_hashes(chain_id))
        cp = Checkpoint(self.origin(chain_id), len(leaves), root_from_leaf_hashes(leaves))
        note = sign_checkpoint(cp, self.key_name, self._key)
        await self._store.add_checkpoint(chain_id, cp.tree_size, cp.root_hash.hex(), note)
        self._last[chain_id] = (cp.tree_size, time.monotonic())
        self.highest_signed[chain_id] = max(self.highest_signed.get(chain_id, 0), cp.tree_size)
        if self._sink_dir is not None:
            await asyncio.to_thread(self._sink_checkpoint, chain_id, note)
        return note

    async def _sink_records(self, chain_id: str) -> None:
        if self._sink_dir is None:
            return
        position = await self._store.sink_position(SINK, chain_id)
        records = await self._store.chain_records(chain_id, position + 1)
        if not records:
            return
        lines = "".join(
            json.dumps(
                {"chain_id": r.chain_id, "seq": r.seq, "record_hash": r.record_hash, "canonical": r.canonical.decode()},
                separators=(",", ":"),
            )
            + "\n"
            for r in records
        )
        await asyncio.to_thread(self._append, self._sink_dir / f"{_safe(chain_id)}.jsonl", lines.encode())
        await self._store.set_sink_position(SINK, chain_id, records[-1].seq)

    def _append(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)

    def _sink_checkpoint(self, chain_id: str, note: str) -> None:
        assert self._sink_dir is not None
        self._append(self._sink_dir / f"{_safe(chain_id)}.checkpoints", note.encode() + b"\n")
        latest = self._sink_dir / f"{_safe(chain_id)}.checkpoint"
        tmp = latest.with_suffix(".tmp")
        tmp.write_text(note)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, latest)


def _safe(chain_id: str) -> str:
    return base64.urlsafe_b64encode(chain_id.encode()).decode().rstrip("=") if "/" in chain_id else chain_id
