"""Hash-chained appends over the journal with group commit: concurrent callers share one write and one fsync.

Sequence numbers and hashes are assigned by a single writer task, so chains stay dense and ordered; a caller's
future resolves only after the fsync that covers its records. If a write fails, heads roll back and every caller
of that batch gets UNAVAILABLE — nothing is acknowledged that is not on disk.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from coresdk.audit.journal import Journal, JournalCorrupt, JournalEntry
from coresdk.audit.record import GENESIS_HASH, SealedRecord, seal
from coresdk.errors import Unavailable

log = logging.getLogger("coresdk.audit")
AUDIT_UNAVAILABLE = "AUDIT_UNAVAILABLE"


@dataclass
class _Request:
    items: list[tuple[str, dict[str, Any]]]
    future: asyncio.Future[list[SealedRecord]] = field(repr=False)


class AuditLog:
    def __init__(self, journal: Journal) -> None:
        self._journal = journal
        self._heads: dict[str, tuple[int, str]] = {}
        self._pending: list[_Request] = []
        self._writer: asyncio.Task[None] | None = None
        self._broken: str | None = "not started"
        self.unshipped: deque[JournalEntry] = deque()
        self._listeners: list[Callable[[], None]] = []
        # A group of at most this many appends is written and fsynced in the event loop's own thread, without the
        # thread handoff and loop wake-up (for a process whose answers wait for their records anyway: the gateway);
        # larger groups, and every group by default (0), in a worker thread, so other work goes on during the fsync.
        self.write_in_loop = 0

    def on_commit(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    async def start(self, shipped: dict[str, int]) -> None:
        try:
            entries = await asyncio.to_thread(self._journal.open)
        except (JournalCorrupt, OSError) as exc:
            self._broken = f"journal cannot be opened: {exc}"
            log.error("audit journal unavailable: %s", exc)
            return
        if self._journal.truncated_bytes:
            log.warning(
                "audit journal: dropped a torn tail of %d bytes (never acknowledged)", self._journal.truncated_bytes
            )
        for e in entries:
            self._heads[e.chain_id] = (e.seq, e.record_hash)
            if e.seq > shipped.get(e.chain_id, 0):
                self.unshipped.append(e)
        self._broken = None
        log.info("audit journal open records=%d chains=%d", len(entries), len(self._heads))

    def ready(self) -> bool:
        return self._broken is None

    def head(self, chain_id: str) -> tuple[int, str]:
        return self._heads.get(chain_id, (0, GENESIS_HASH))

    async def append(self, items: list[tuple[str, dict[str, Any]]]) -> list[SealedRecord]:
        """items: (chain_id, validated body). Returns the sealed records once they are durable."""
        if self._broken is not None:
            raise Unavailable(AUDIT_UNAVAILABLE, f"audit journal unavailable: {self._broken}")
        future: asyncio.Future[list[SealedRecord]] = asyncio.get_running_loop().create_future()
        self._pending.append(_Request(items, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_loop())
        return await future

    async def _write_loop(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            snapshot = dict(self._heads)
            sealed_per_request: list[list[SealedRecord]] = []
            entries: list[JournalEntry] = []
            for request in batch:
                sealed = []
                for chain_id, body in request.items:
                    seq, previous = self._heads.get(chain_id, (0, GENESIS_HASH))
                    record = seal(body, chain_id, seq + 1, previous)
                    self._heads[chain_id] = (record.seq, record.record_hash)
                    sealed.append(record)
                    entries.append(JournalEntry(chain_id, record.seq, record.record_hash, record.canonical))
                sealed_per_request.append(sealed)
            try:
                if len(batch) <= self.write_in_loop:
                    self._journal.append(entries)
                else:
                    await asyncio.to_thread(self._journal.append, entries)
            except OSError as exc:
                self._heads = snapshot
                log.error("audit journal write failed: %s", exc)
                for request in batch:
                    if not request.future.done():
                        request.future.set_exception(Unavailable(AUDIT_UNAVAILABLE, "audit journal write failed"))
                continue
            if self._listeners:  # a shipper drains unshipped (on_commit); without one it only grew, forever
                self.unshipped.extend(entries)
            for request, sealed in zip(batch, sealed_per_request, strict=True):
                if not request.future.done():
                    request.future.set_result(sealed)
            for listener in self._listeners:
                listener()

    async def read_all(self) -> list[JournalEntry]:
        return await asyncio.to_thread(self._journal.read_all)

    def close(self) -> None:
        self._journal.close()
