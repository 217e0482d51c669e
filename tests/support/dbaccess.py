"""Direct access to a control plane's database, for tests that must age a record or scan for cleartext."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import asyncpg


def db_execute(database_url: str, sql: str) -> None:
    if database_url.startswith("sqlite:///"):
        conn = sqlite3.connect(database_url[len("sqlite:///") :], timeout=10)
        try:
            conn.execute(sql)
            conn.commit()
        finally:
            conn.close()
        return

    async def run() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


def db_dump(database_url: str) -> str:
    """Every cell of every table as text."""
    if database_url.startswith("sqlite:///"):
        conn = sqlite3.connect(database_url[len("sqlite:///") :], timeout=10)
        try:
            tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            return "\n".join(repr(row) for t in tables for row in conn.execute(f"SELECT * FROM {t}"))
        finally:
            conn.close()

    async def run() -> str:
        conn = await asyncpg.connect(database_url)
        try:
            tables = [
                r["tablename"] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")
            ]
            rows: list[Any] = []
            for t in tables:
                rows.extend(await conn.fetch(f'SELECT * FROM "{t}"'))
            return "\n".join(repr(dict(r)) for r in rows)
        finally:
            await conn.close()

    return asyncio.run(run())
