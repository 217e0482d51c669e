"""Ships journal entries to the control plane (POST /api/v1/audit/ingest): batched, at least once, in order.

The acknowledged position per chain is kept in `shipped.json` (written atomically), so shipping resumes where it
stopped after an outage of either side. The control plane is idempotent by (chain_id, seq).

Each batch holds one chain. A chain the control plane refuses (403: not bound to this sidecar's credential; 409: a
conflicting history; 400) is held back and retried with its own back-off, while every other chain keeps shipping.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections import deque
from pathlib import Path

import aiohttp

from coresdk.audit.journal import JournalEntry
from coresdk.audit.log import AuditLog

log = logging.getLogger("coresdk.audit.shipper")
BATCH = 500
CHAIN_REFUSALS = (400, 403, 409)  # answers about one chain's records, not about the sidecar or the control plane
HOLD_FIRST, HOLD_MAX = 5.0, 300.0


def load_position(path: Path) -> dict[str, int]:
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    return {str(k): int(v) for k, v in data.items()}


def save_position(path: Path, position: dict[str, int]) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as fh:
        json.dump(position, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _wire(e: JournalEntry) -> dict[str, object]:
    return {"chain_id": e.chain_id, "seq": e.seq, "record_hash": e.record_hash, "canonical": e.canonical.decode()}


class Shipper:
    def __init__(self, audit: AuditLog, url: str, token: str, position_file: Path, position: dict[str, int]) -> None:
        self._audit = audit
        self._url = url
        self._token = token
        self._position_file = position_file
        self._position = position
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.rejected = 0
        self._held: dict[str, tuple[float, float]] = {}  # chain → (retry at, current hold)
        audit.on_commit(self._wake.set)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="audit-shipper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _next_batch(self) -> list[JournalEntry]:
        """Up to BATCH unshipped entries of one chain: the oldest chain that is not held back."""
        now = time.monotonic()
        chain: str | None = None
        batch: list[JournalEntry] = []
        for entry in self._audit.unshipped:
            if chain is None:
                if self._held.get(entry.chain_id, (0.0, 0.0))[0] > now:
                    continue
                chain = entry.chain_id
            if entry.chain_id == chain:
                batch.append(entry)
                if len(batch) == BATCH:
                    break
        return batch

    def _acknowledge(self, batch: list[JournalEntry]) -> None:
        done = {id(e) for e in batch}
        self._audit.unshipped = deque(e for e in self._audit.unshipped if id(e) not in done)
        chain = batch[0].chain_id
        self._position[chain] = max(self._position.get(chain, 0), batch[-1].seq)
        self._held.pop(chain, None)

    def _hold(self, chain_id: str) -> float:
        """Hold back one refused chain (its binding or history must be fixed by a person); retry it later."""
        wait = min(self._held.get(chain_id, (0.0, HOLD_FIRST / 2))[1] * 2, HOLD_MAX)
        self._held[chain_id] = (time.monotonic() + wait, wait)
        return wait

    async def _loop(self) -> None:
        backoff = 0.5
        async with aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=15), headers={"Authorization": f"Bearer {self._token}"}
        ) as session:
            while True:
                batch = self._next_batch()
                if not batch:
                    self._wake.clear()
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout=5)
                    continue
                try:
                    async with session.post(self._url, json={"records": [_wire(e) for e in batch]}) as resp:
                        status, body = resp.status, await resp.text()
                except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                    status, body = 0, str(exc)
                if status == 200:
                    backoff = 0.5
                    self._acknowledge(batch)
                    await asyncio.to_thread(save_position, self._position_file, dict(self._position))
                elif status in CHAIN_REFUSALS:
                    # this chain is refused (not this sidecar's, or a conflicting history): the others go on
                    self.rejected += 1
                    wait = self._hold(batch[0].chain_id)
                    log.error(
                        "audit shipping of chain %s refused by the control plane (HTTP %d), retry in %.0fs: %s",
                        batch[0].chain_id,
                        status,
                        wait,
                        body[:300],
                    )
                else:  # unreachable, 401 (credential), 5xx: nothing can be shipped, back off
                    log.warning("audit shipping failed, will retry: HTTP %d %s", status, body[:300])
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 30.0)
