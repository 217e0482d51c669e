"""One leader among the replicas for work that must happen once: checkpoint signing, retention, sink shipping.

On PostgreSQL the leader is the replica holding a session-level advisory lock on a connection of its own; when that
process dies (even kill -9) its connection closes and PostgreSQL releases the lock, so another replica, trying once
a second, takes over within about a second. The leader confirms its connection before each round of work, and the
stores guard what must not happen twice (a checkpoint at a size already signed is not signed again), so a leader
that lost its connection mid-round cannot do harm. On SQLite there is one node: it always leads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from typing import Any

import asyncpg

from controlplane.store.db import Database, PostgresDatabase, StoreUnavailable

LEADER_LOCK = "coresdk-controlplane-leader"
ATTEMPT_EVERY = 1.0
log = logging.getLogger("coresdk.controlplane.leader")


class Leadership:
    def __init__(self, db: Database, name: str = LEADER_LOCK) -> None:
        self._db = db
        self._name = name
        self._conn: Any = None  # the session holding the lock, while this replica leads
        self._candidate: Any = None  # the session trying for it, while another replica leads
        self._task: asyncio.Task[None] | None = None
        self.identity = f"{socket.gethostname()}:{os.getpid()}"
        self.single_node = not isinstance(db, PostgresDatabase)

    async def start(self) -> None:
        if self.single_node:
            return
        await self._attempt()
        self._task = asyncio.create_task(self._campaign(), name="leader-election")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            # a check cancelled mid-query can surface as asyncpg's InternalClientError instead of CancelledError
            # (the reply arrives for a state the protocol already left); either way the campaign has ended
            with contextlib.suppress(asyncio.CancelledError, asyncpg.exceptions.InternalClientError):
                await self._task
        await self._step_down()

    @property
    def leading(self) -> bool:
        return self.single_node or self._conn is not None

    async def confirm(self) -> bool:
        """True if this replica still holds the lock, checked on its connection now (not from memory)."""
        if self.single_node:
            return True
        if self._conn is None:
            return False
        try:
            await self._conn.fetchval("SELECT 1", timeout=2)
        except (TimeoutError, OSError, asyncpg.exceptions.PostgresError, asyncpg.exceptions.InterfaceError):
            log.warning("leader %s lost its lock connection: stepping down", self.identity)
            await self._step_down()
            return False
        return True

    async def _campaign(self) -> None:
        while True:
            await asyncio.sleep(ATTEMPT_EVERY)
            if self._conn is None:
                await self._attempt()
            else:
                await self.confirm()

    async def _attempt(self) -> None:
        """Try the lock once, on a session kept between attempts (no new connection every second)."""
        assert isinstance(self._db, PostgresDatabase)
        if self._candidate is None or self._candidate.is_closed():
            try:
                self._candidate = await self._db.session()
            except StoreUnavailable:
                return
        conn = self._candidate
        try:
            got = await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", self._name, timeout=2)
            if got:
                name = f"coresdk-leader {self.identity}"
                await conn.execute("SELECT set_config('application_name', $1, false)", name, timeout=2)
        except (TimeoutError, OSError, asyncpg.exceptions.PostgresError, asyncpg.exceptions.InterfaceError):
            self._candidate = None
            with contextlib.suppress(Exception):
                await conn.close()
            return
        if got:
            self._conn, self._candidate = conn, None
            log.info("leader: %s holds the background work", self.identity)

    async def _step_down(self) -> None:
        for conn in (self._conn, self._candidate):
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()
        self._conn = self._candidate = None


async def current_leader(db: Database, name: str = LEADER_LOCK) -> str | None:
    """Who holds the lock, as its application_name says ("coresdk-leader host:pid"); None when nobody does."""
    if not isinstance(db, PostgresDatabase):
        return "single-node"
    async with db.transaction() as tx:
        row = await tx.fetchrow(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND l.objsubid = 1 AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtext($1)::bigint "
            "LIMIT 1",
            name,
        )
    if row is None:
        return None
    return str(row["application_name"]).removeprefix("coresdk-leader ")
