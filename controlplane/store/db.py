"""A thin transactional SQL layer with two backends: SQLite (embedded default) and PostgreSQL (asyncpg).

Queries are written once with PostgreSQL's `$n` placeholders (each used once, in order); the SQLite backend
rewrites them to `?`. Every store operation runs inside `transaction()`, so a multi-step rule is one atomic unit:
SQLite serialises writers with BEGIN IMMEDIATE behind one connection, PostgreSQL uses row locks and conditional
UPDATE ... RETURNING (compare-and-set).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol

import aiosqlite
import asyncpg

Row = Mapping[str, Any]
_PLACEHOLDER = re.compile(r"\$\d+")


class StoreUnavailable(Exception):
    """The database cannot be reached; callers answer 503, never a silent success."""


class Tx(Protocol):
    dialect: str
    # True where the transaction itself already excludes every other writer (SQLite's BEGIN IMMEDIATE), so a
    # serialize() is free and a row read inside the transaction cannot change under it.
    single_writer: bool

    async def execute(self, sql: str, *args: Any) -> int: ...
    async def fetchrow(self, sql: str, *args: Any) -> Row | None: ...
    async def fetch(self, sql: str, *args: Any) -> list[Row]: ...
    async def serialize(self, name: str) -> None: ...


class Database(Protocol):
    dialect: str

    def transaction(self, locks: tuple[str, ...] = ()) -> Any: ...
    async def read(self, sql: str, *args: Any) -> list[Row]: ...
    async def listen(self, channel: str, callback: Callable[[str], None]) -> bool: ...
    async def close(self) -> None: ...


@functools.lru_cache(maxsize=512)
def _sqlite_sql(sql: str) -> str:
    """The statement with SQLite's `?` placeholders (statements are few and fixed: rewritten once each)."""
    return _PLACEHOLDER.sub("?", sql)


class _SqliteTx:
    dialect = "sqlite"
    single_writer = True

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, *args: Any) -> int:
        cursor = await self._conn.execute(_sqlite_sql(sql), args)
        return cursor.rowcount

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        """One hop to the connection's thread (statement and rows together), not three (execute, fetch, close)."""
        rows = await self._conn.execute_fetchall(_sqlite_sql(sql), args)
        for row in rows:
            return dict(row)
        return None

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        rows = await self._conn.execute_fetchall(_sqlite_sql(sql), args)
        return [dict(r) for r in rows]

    async def serialize(self, name: str) -> None:
        return None  # BEGIN IMMEDIATE already serialises every writer


class SqliteDatabase:
    dialect = "sqlite"

    def __init__(self, conn: aiosqlite.Connection, reader: aiosqlite.Connection | None = None) -> None:
        self._conn = conn
        self._reader = reader
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path) -> SqliteDatabase:
        """Both connections, or StoreUnavailable saying why (and nothing left open: an aiosqlite connection is a
        thread that would keep a process that failed to start from exiting)."""
        opened: list[aiosqlite.Connection] = []
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            conn = await aiosqlite.connect(str(path), isolation_level=None)
            opened.append(conn)
            conn.row_factory = sqlite3.Row
            await conn.execute("PRAGMA journal_mode=WAL")  # the first read of the file: not a database fails here
            await conn.execute("PRAGMA synchronous=FULL")
            await conn.execute("PRAGMA foreign_keys=ON")
            await conn.execute("PRAGMA busy_timeout=5000")
            path.chmod(0o600)
            # A second connection for single-statement reads: in WAL mode a reader sees the last commit and neither
            # waits for nor blocks the writer, so a token request's client lookup does not queue behind a commit's
            # fsync.
            reader = await aiosqlite.connect(str(path), isolation_level=None)
            opened.append(reader)
            reader.row_factory = sqlite3.Row
            await reader.execute("PRAGMA query_only=ON")
            await reader.execute("PRAGMA busy_timeout=5000")
        except BaseException as exc:
            for connection in opened:
                with contextlib.suppress(Exception):
                    await connection.close()
            if isinstance(exc, (OSError, sqlite3.Error)):
                raise StoreUnavailable(f"cannot open the SQLite database {path}: {exc}") from None
            raise
        return cls(conn, reader)

    async def read(self, sql: str, *args: Any) -> list[Row]:
        """One read-only statement on its own (its own snapshot of the last commit), one hop to the reader thread."""
        conn = self._reader or self._conn
        try:
            rows = await conn.execute_fetchall(_sqlite_sql(sql), args)
        except sqlite3.Error as exc:
            raise StoreUnavailable(str(exc)) from exc
        return [dict(r) for r in rows]

    @asynccontextmanager
    async def transaction(self, locks: tuple[str, ...] = ()) -> AsyncIterator[Tx]:
        """locks: names to serialize() on, as PostgreSQL's transaction() takes them (BEGIN IMMEDIATE already does)."""
        async with self._lock:
            try:
                await self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreUnavailable(str(exc)) from exc
            try:
                yield _SqliteTx(self._conn)
            except BaseException:
                await self._conn.execute("ROLLBACK")
                raise
            else:
                await self._conn.execute("COMMIT")

    async def listen(self, channel: str, callback: Callable[[str], None]) -> bool:
        return True  # one process owns an SQLite file: nobody else changes it

    async def close(self) -> None:
        if self._reader is not None:
            await self._reader.close()
        await self._conn.close()


class _PostgresTx:
    dialect = "postgres"
    single_writer = False

    def __init__(self, conn: asyncpg.Connection, held: tuple[str, ...] = ()) -> None:
        self._conn = conn
        self._held = frozenset(held)  # advisory locks taken with BEGIN (PostgresDatabase.transaction's locks)

    async def execute(self, sql: str, *args: Any) -> int:
        status = await self._conn.execute(sql, *args)
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        row = await self._conn.fetchrow(sql, *args)
        return dict(row) if row is not None else None

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return [dict(r) for r in await self._conn.fetch(sql, *args)]

    async def serialize(self, name: str) -> None:
        # Transaction-scoped advisory lock: rows that must become visible in sequence order (revocations,
        # audit) are written one transaction at a time.
        if name in self._held:
            return  # taken with BEGIN, before any statement of this transaction ran
        await self._conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", name)


_LOCK_NAME = re.compile(r"[A-Za-z0-9:_.-]+")


def _begin_locked(locks: tuple[str, ...]) -> str:
    """BEGIN and the transaction's advisory locks as one simple-protocol message (one round trip, not 1 + n).

    The names are the code's own constants (never a request's value), checked to be plain words anyway, since a
    simple query carries no parameters. Each statement of the message runs in order, so every later statement of
    the transaction (in READ COMMITTED, each with its own snapshot) starts after the locks are held.
    """
    for name in locks:
        if not _LOCK_NAME.fullmatch(name):
            raise ValueError(f"advisory lock name {name!r} is not a plain word")
    return "BEGIN; " + " ".join(f"SELECT pg_advisory_xact_lock(hashtext('{name}'));" for name in locks)


# How long a request waits on PostgreSQL when it does not answer (a partition: connections open, no bytes): a new
# connection, or a free one from the pool, in CONNECT_TIMEOUT; a statement on its own, acquiring its connection
# included, in STATEMENT_DEADLINE. Past them the caller gets StoreUnavailable (503), not the driver's own timeouts
# added up (60 s to connect, then 10 s per statement plus the cancellation's own round trip). Statements inside a
# transaction keep the 10 s command timeout: a prune or a group commit may legitimately take longer than a lookup.
CONNECT_TIMEOUT = 5.0
STATEMENT_DEADLINE = 5.0


def _why(exc: BaseException) -> str:
    """A reason that is never empty (a TimeoutError's text is)."""
    return str(exc) or f"{type(exc).__name__}: PostgreSQL did not answer in time"


# What a store answers when it cannot do what it was asked (a missing privilege, a read-only file, a full disk):
# at start-up these mean the database setting is unusable for this service.
DATABASE_ERRORS = (sqlite3.Error, asyncpg.exceptions.PostgresError, asyncpg.exceptions.InterfaceError)

_CONNECTION_ERRORS = (
    TimeoutError,
    OSError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.InterfaceError,
)


async def _keep_session_state(_conn: asyncpg.Connection) -> None:
    """The pool's reset between uses: nothing beyond asyncpg's own (which rolls back an open transaction).

    asyncpg's default resets every released connection with a query (unlock advisory locks, close cursors,
    UNLISTEN, RESET ALL): one more round trip for every statement the token endpoint runs. Pool connections never
    carry such state here: advisory locks are transaction-scoped, LISTEN and the leader's session lock live on
    connections of their own (PostgresDatabase.session), and nothing SETs a session variable.
    """


@asynccontextmanager
async def _locked_transaction(conn: asyncpg.Connection, locks: tuple[str, ...]) -> AsyncIterator[None]:
    """BEGIN with the locks, COMMIT on success, ROLLBACK on any failure or cancellation (as conn.transaction())."""
    await conn.execute(_begin_locked(locks))
    try:
        yield
    except BaseException:
        if not conn.is_closed():
            with contextlib.suppress(Exception):  # a broken connection is closed by the pool; the error stands
                await conn.execute("ROLLBACK")
        raise
    else:
        await conn.execute("COMMIT")


class PostgresDatabase:
    dialect = "postgres"

    def __init__(self, pool: asyncpg.Pool, url: str) -> None:
        self._pool = pool
        self._url = url
        self._listener: asyncpg.Connection | None = None

    @classmethod
    async def open(cls, url: str) -> PostgresDatabase:
        try:
            pool = await asyncpg.create_pool(
                url,
                min_size=1,
                max_size=10,
                timeout=CONNECT_TIMEOUT,
                command_timeout=10,
                reset=_keep_session_state,
            )
        except (TimeoutError, OSError, asyncpg.exceptions.PostgresError) as exc:
            raise StoreUnavailable(f"cannot connect to PostgreSQL: {type(exc).__name__}: {exc}") from exc
        return cls(pool, url)

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        """One statement on its own (autocommit): one round trip, where a transaction() would take three."""
        try:
            async with asyncio.timeout(STATEMENT_DEADLINE), self._pool.acquire() as conn:
                row = await conn.fetchrow(sql, *args)
        except _CONNECTION_ERRORS as exc:
            raise StoreUnavailable(_why(exc)) from exc
        return dict(row) if row is not None else None

    async def read(self, sql: str, *args: Any) -> list[Row]:
        """One read-only statement on its own (autocommit): one round trip."""
        return await self.statement(sql, *args)

    async def statement(self, sql: str, *args: Any) -> list[Row]:
        """One statement on its own (autocommit), its rows: one round trip, where a transaction() takes three."""
        try:
            async with asyncio.timeout(STATEMENT_DEADLINE), self._pool.acquire() as conn:
                rows = await conn.fetch(sql, *args)
        except _CONNECTION_ERRORS as exc:
            raise StoreUnavailable(_why(exc)) from exc
        return [dict(r) for r in rows]

    async def session(self) -> asyncpg.Connection:
        """A connection of its own, outside the pool, for state that lives as long as the session: a LISTEN, or
        an advisory lock that PostgreSQL releases the moment this process or its connection dies."""
        try:
            return await asyncpg.connect(self._url, timeout=5, command_timeout=5)
        except (TimeoutError, OSError, asyncpg.exceptions.PostgresError) as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def listen(self, channel: str, callback: Callable[[str], None]) -> bool:
        """LISTEN on a session of its own (replacing a previous one); False when it cannot be set up now."""
        if self._listener is not None and not self._listener.is_closed():
            with contextlib.suppress(Exception):  # a session broken by a database restart is replaced anyway
                await self._listener.close()
        try:
            conn = await self.session()
            await conn.add_listener(channel, lambda _c, _pid, _ch, payload: callback(payload))
        except (StoreUnavailable, OSError, asyncpg.exceptions.PostgresError):
            return False
        self._listener = conn
        return True

    @asynccontextmanager
    async def transaction(self, locks: tuple[str, ...] = ()) -> AsyncIterator[Tx]:
        """One transaction; with `locks`, their advisory locks are taken in BEGIN's own round trip."""
        try:
            conn = await self._pool.acquire(timeout=CONNECT_TIMEOUT)
        except (TimeoutError, OSError, asyncpg.exceptions.PostgresError) as exc:
            raise StoreUnavailable(_why(exc)) from exc
        try:
            if locks:
                async with _locked_transaction(conn, locks):
                    yield _PostgresTx(conn, locks)
            else:
                async with conn.transaction():
                    yield _PostgresTx(conn)
        except (OSError, asyncpg.exceptions.PostgresConnectionError, asyncpg.exceptions.InterfaceError) as exc:
            raise StoreUnavailable(str(exc)) from exc
        finally:
            await self._pool.release(conn)

    async def close(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            with contextlib.suppress(Exception):
                await self._listener.close()
        await self._pool.close()


async def open_database(url: str) -> SqliteDatabase | PostgresDatabase:
    if url.startswith("sqlite:///"):
        return await SqliteDatabase.open(Path(url[len("sqlite:///") :]))
    return await PostgresDatabase.open(url)


MAX_PARAMETERS = 30000  # below PostgreSQL's 65535 and SQLite's 32766 bound parameters per statement


async def insert_rows(tx: Tx, head: str, rows: Sequence[Sequence[Any]]) -> None:
    """Rows inserted with one multi-row INSERT (head: "INSERT INTO t (a, b)"), in chunks under the parameter limit.

    A batch of n rows is one statement: one message and one reply on PostgreSQL, one hop to SQLite's thread,
    where executemany would send n (PostgreSQL) or still bind n statements.
    """
    if not rows:
        return
    width = len(rows[0])
    per_statement = max(1, MAX_PARAMETERS // width)
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        groups = ", ".join(f"({placeholders(row, i * width + 1)})" for i, row in enumerate(chunk))
        await tx.execute(f"{head} VALUES {groups}", *[value for row in chunk for value in row])


async def insert_many(tx: Tx, inserts: Sequence[tuple[str, Sequence[Sequence[Any]]]]) -> None:
    """Several tables' rows (each (head, rows) as insert_rows takes them), in order, in as few statements as may be.

    On PostgreSQL they are one statement (each insert but the last a data-modifying WITH query: all of them run,
    in one message and one reply); SQLite has no such statement, so it runs one insert_rows per table. The tables
    must not depend on one another's new rows (the inserts of one statement share a snapshot).
    """
    inserts = [(head, rows) for head, rows in inserts if rows]
    total = sum(len(rows) * len(rows[0]) for _, rows in inserts)
    if tx.dialect != "postgres" or len(inserts) < 2 or total > MAX_PARAMETERS:
        for head, rows in inserts:
            await insert_rows(tx, head, rows)
        return
    parts: list[str] = []
    args: list[Any] = []
    for head, rows in inserts:
        width = len(rows[0])
        start = len(args) + 1
        groups = ", ".join(f"({placeholders(row, start + i * width)})" for i, row in enumerate(rows))
        parts.append(f"{head} VALUES {groups}")
        args.extend(value for row in rows for value in row)
    *first, last = parts
    with_clause = "WITH " + ", ".join(f"w{i} AS ({part})" for i, part in enumerate(first))
    await tx.execute(f"{with_clause} {last}", *args)


def placeholders(values: Sequence[Any], start: int = 1) -> str:
    return ", ".join(f"${i}" for i in range(start, start + len(values)))
