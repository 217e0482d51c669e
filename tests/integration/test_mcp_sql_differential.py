"""The SQL guard agrees with PostgreSQL itself: what it calls one statement, PostgreSQL prepares as one; what it
calls read-only runs in a READ ONLY transaction; what it refuses as several statements, PostgreSQL would run as
several. A disagreement would let a statement past the policy that does something else on the server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from coresdk.mcp.sql_guard import SqlRefused, classify
from tests.support.postgres import PostgresCluster
from tests.unit.test_mcp_sql_guard import READS, SEPARATORS, WRITES

HIDDEN = [
    "SELECT 1 /* ; DROP TABLE t */",
    "SELECT 1 -- ; DROP TABLE t",
    "SELECT 1 /* /* nested */ ; DROP TABLE t */",
    "SELECT '; DROP TABLE t; --'",
    "SELECT $$ ; DROP TABLE t; $$",
    "SELECT $tag$ ; DROP TABLE t; $tag$",
    "SELECT E'\\'; DROP TABLE t; --'",
    'SELECT "a""; DROP TABLE t; --" FROM x',
    "SELECT 1;",
    "SELECT 1; -- trailing comment",
]
SEVERAL = [
    "SELECT '\\'; DROP TABLE t; --'",
    "SELECT a$$; DROP TABLE t; --$$ FROM x",
    *(f"SELECT * FROM orders{sep}DROP TABLE t" for sep in SEPARATORS),
]
SCHEMA = """
CREATE TABLE customers (id int PRIMARY KEY, name text, note text);
CREATE TABLE orders (id int PRIMARY KEY, customer_id int, total numeric, created timestamptz DEFAULT now());
CREATE TABLE lines (order_id int);
CREATE TABLE t (id int);
CREATE TABLE audit (id int);
CREATE TABLE x ("a""; DROP TABLE t; --" int, "a$$" int);
"""


@pytest.fixture(scope="module")
async def conn(postgres: PostgresCluster) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(postgres.new_database())
    await connection.execute(SCHEMA)
    yield connection
    await connection.close()


async def statements_postgres_sees(conn: asyncpg.Connection, sql: str) -> int:
    """1 when the extended protocol prepares the text as a single statement; 2 when PostgreSQL finds several."""
    try:
        await conn.prepare(sql)
    except asyncpg.PostgresSyntaxError as err:
        if "multiple commands" in str(err):
            return 2
        raise
    return 1


@pytest.mark.parametrize("sql", READS + HIDDEN)
async def test_one_read_only_statement_for_the_guard_is_one_read_only_statement_for_postgres(
    conn: asyncpg.Connection, sql: str
) -> None:
    assert classify(sql)["read_only"] is True
    assert await statements_postgres_sees(conn, sql) == 1
    async with conn.transaction(readonly=True):
        await conn.execute("SET LOCAL statement_timeout = '5s'")
        await conn.fetch(sql)  # a write would raise ReadOnlySQLTransactionError


@pytest.mark.parametrize("sql", SEVERAL)
async def test_several_statements_for_the_guard_are_several_for_postgres(conn: asyncpg.Connection, sql: str) -> None:
    with pytest.raises(SqlRefused) as err:
        classify(sql)
    assert err.value.reason == "SQL_MULTIPLE_STATEMENTS"
    assert await statements_postgres_sees(conn, sql) == 2


@pytest.mark.parametrize("sql", [w for w in WRITES if w.startswith(("WITH", "SELECT"))])
async def test_queries_the_guard_calls_writing_do_write_or_call_unknown_code(
    conn: asyncpg.Connection, sql: str
) -> None:
    """The guard's 'not read-only' for query-shaped text is not over-cautious parsing: PostgreSQL either refuses it
    in a READ ONLY transaction or it calls a function the guard cannot see into (or does not exist here)."""
    result = classify(sql)
    assert result["read_only"] is False
    if any(e.startswith("function:") for e in result["effects"]):
        return
    # (a SELECT ... INTO inside a set operation PostgreSQL refuses outright: a syntax error)
    expected = (asyncpg.ReadOnlySQLTransactionError, asyncpg.PostgresSyntaxError) if " INTO " in sql else ()
    with pytest.raises(expected or asyncpg.ReadOnlySQLTransactionError):
        async with conn.transaction(readonly=True):
            await conn.fetch(sql)
