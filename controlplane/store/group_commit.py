"""Group commit: concurrent writes share one transaction (one fsync); each caller returns only after the commit.

client_credentials issues an access token per request with no other state; without batching every request would
pay its own commit, which bounds the token endpoint by the disk rather than by signing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from controlplane.store.db import Database, Tx

Item = TypeVar("Item")


class GroupCommit(Generic[Item]):
    """Writes each batch with write(tx, items); a failed batch fails every waiter in it, none is acknowledged."""

    def __init__(self, db: Database, write: Callable[[Tx, list[Item]], Awaitable[None]]) -> None:
        self._db = db
        self._write = write
        self._pending: list[tuple[Item, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        await future

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                async with self._db.transaction() as tx:
                    await self._write(tx, [item for item, _ in batch])
            except Exception as exc:  # every waiter learns the batch failed; nothing was acknowledged
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
            else:
                for _, future in batch:
                    if not future.done():
                        future.set_result(None)
