"""Batching of concurrent store work: what callers ask while one batch is at the database goes in the next one.

client_credentials issues an access token per request with no other state; without batching every request would
pay its own commit (bounding the token endpoint by the disk), its own client lookup and its own rate-limit
statement (bounding it by round trips). A Batcher turns n concurrent requests into one call of `run` with n items;
each caller gets its own result, and only after the whole batch is done. GroupCommit is the write case: one
transaction, one fsync, for every item of the batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from controlplane.store.db import Database, Tx

Item = TypeVar("Item")
Result = TypeVar("Result")


class Batcher(Generic[Item, Result]):
    """run(items) answers a batch in order; if it fails, every caller in that batch gets the error, none a result."""

    def __init__(self, run: Callable[[list[Item]], Awaitable[Sequence[Result]]]) -> None:
        self._run = run
        self._pending: list[tuple[Item, asyncio.Future[Result]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                results = await self._run([item for item, _ in batch])
            except Exception as exc:  # every waiter learns the batch failed; nothing was acknowledged
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)


class GroupCommit(Generic[Item]):
    """Writes each batch with write(tx, items) in one transaction; a caller returns only after the commit."""

    def __init__(
        self, db: Database, write: Callable[[Tx, list[Item]], Awaitable[None]], locks: tuple[str, ...] = ()
    ) -> None:
        """locks: the advisory locks every batch's write serializes on, taken with BEGIN (Database.transaction)."""
        self._db = db
        self._write = write
        self._locks = locks
        self._batches: Batcher[Item, None] = Batcher(self._commit)

    async def _commit(self, items: list[Item]) -> list[None]:
        async with self._db.transaction(self._locks) as tx:
            await self._write(tx, items)
        return [None] * len(items)

    async def submit(self, item: Item) -> None:
        await self._batches.submit(item)
