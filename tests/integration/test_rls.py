"""Row-level tenant isolation on a private PostgreSQL, as the application's own (non-superuser) role that owns the
table: two tenants, queries without WHERE, no tenant at all, writes into another tenant, and the audited bypass."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from coresdk.errors import InvalidArgument
from coresdk.tenancy.rls import (
    BypassRecord,
    BypassRefused,
    IsolationNotEnforced,
    TenantRequired,
    enable_tenant_isolation,
    isolation_policy_sql,
    tenant_bypass,
    tenant_transaction,
)
from tests.support.postgres import PostgresCluster


@dataclass(frozen=True)
class Principal:
    subject: str
    tenant_id: str


def as_role(dsn: str, role: str, password: str) -> str:
    parts = urlsplit(dsn)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{role}:{password}@{host}"))


@dataclass
class Db:
    owner: str  # superuser DSN (the test cluster's)
    app: str  # the application's role: owns the table, no BYPASSRLS
    admin: str  # an admin job's role: BYPASSRLS, not superuser


@pytest.fixture(scope="module")
async def db(postgres: PostgresCluster) -> AsyncIterator[Db]:
    dsn = postgres.new_database()
    suffix = uuid.uuid4().hex[:8]
    app, admin, password = f"app_{suffix}", f"admin_{suffix}", uuid.uuid4().hex
    su = await asyncpg.connect(dsn)
    database = urlsplit(dsn).path.lstrip("/")
    await su.execute(f"CREATE ROLE {app} LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD '{password}'")
    await su.execute(f"CREATE ROLE {admin} LOGIN NOSUPERUSER BYPASSRLS PASSWORD '{password}'")
    await su.execute(f'GRANT CONNECT, CREATE ON DATABASE "{database}" TO {app}, {admin}')
    await su.execute(f"GRANT CREATE, USAGE ON SCHEMA public TO {app}")
    await su.execute(f"GRANT USAGE ON SCHEMA public TO {admin}")
    await su.close()
    result = Db(dsn, as_role(dsn, app, password), as_role(dsn, admin, password))
    conn = await asyncpg.connect(result.app)
    await conn.execute("CREATE TABLE docs (id serial PRIMARY KEY, tenant_id text NOT NULL, body text NOT NULL)")
    await conn.execute("CREATE TABLE notes (id serial PRIMARY KEY, tenant_id text NOT NULL, body text)")
    await conn.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON docs, notes TO {admin}")
    await enable_tenant_isolation(conn, ["docs", "public.notes"])
    await enable_tenant_isolation(conn, ["docs"])  # a migration may run again
    for tenant, body in [("t1", "a1"), ("t1", "a2"), ("t2", "b1")]:
        async with tenant_transaction(conn, Principal("u", tenant)):
            await conn.execute("INSERT INTO docs (tenant_id, body) VALUES ($1, $2)", tenant, body)
    await conn.close()
    # a row whose tenant is the empty string: seen by no one, even when the setting reads as ''
    su = await asyncpg.connect(dsn)
    await su.execute("INSERT INTO docs (tenant_id, body) VALUES ('', 'blank-tenant row')")
    await su.close()
    yield result


@pytest.fixture(scope="module")
async def app(db: Db) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(db.app)
    yield conn
    await conn.close()


async def bodies(conn: asyncpg.Connection) -> list[str]:
    return sorted(r["body"] for r in await conn.fetch("SELECT body FROM docs"))


async def test_a_query_without_where_sees_only_its_own_tenants_rows(app: asyncpg.Connection) -> None:
    async with tenant_transaction(app, Principal("alice", "t1")):
        assert await bodies(app) == ["a1", "a2"]
        assert await app.fetchval("SELECT count(*) FROM docs WHERE tenant_id = 't2'") == 0
    async with tenant_transaction(app, "t2"):
        assert await bodies(app) == ["b1"]


async def test_without_a_tenant_nothing_is_visible(app: asyncpg.Connection) -> None:
    assert await bodies(app) == []  # never set on this connection: current_setting(..., true) is NULL
    async with tenant_transaction(app, "t1"):
        pass
    assert await app.fetchval("SELECT current_setting('coresdk.tenant_id', true)") == ""  # reverted, not unset
    assert await bodies(app) == []  # '' is no tenant, not the tenant of the blank row
    await app.execute("SET coresdk.tenant_id = ''")
    assert await bodies(app) == []
    await app.execute("RESET coresdk.tenant_id")
    async with tenant_transaction(app, "t1' OR '1'='1"):  # a value, never SQL
        assert await bodies(app) == []


async def test_writes_into_another_tenant_are_refused(app: asyncpg.Connection) -> None:
    async with tenant_transaction(app, "t1"):
        assert await app.execute("UPDATE docs SET body = body WHERE tenant_id = 't2'") == "UPDATE 0"
        assert await app.execute("DELETE FROM docs WHERE tenant_id = 't2'") == "DELETE 0"
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
        async with tenant_transaction(app, "t1"):
            await app.execute("INSERT INTO docs (tenant_id, body) VALUES ('t2', 'planted')")
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
        async with tenant_transaction(app, "t1"):
            await app.execute("UPDATE docs SET tenant_id = 't2'")  # moving one's own rows to another tenant
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
        await app.execute("INSERT INTO docs (tenant_id, body) VALUES ('t1', 'no tenant set')")
    async with tenant_transaction(app, "t2"):
        assert await bodies(app) == ["b1"]


async def test_a_missing_tenant_is_refused_before_any_query(app: asyncpg.Connection) -> None:
    for tenant in ("", "  ", Principal("svc", "")):
        with pytest.raises(TenantRequired):
            async with tenant_transaction(app, tenant):
                raise AssertionError("the body must not run")


async def test_a_role_that_bypasses_rls_cannot_run_a_tenant_unit_of_work(db: Db) -> None:
    for dsn in (db.owner, db.admin):  # superuser, BYPASSRLS
        conn = await asyncpg.connect(dsn)
        try:
            with pytest.raises(IsolationNotEnforced):
                async with tenant_transaction(conn, "t1"):
                    raise AssertionError("the body must not run")
        finally:
            await conn.close()


async def test_the_bypass_needs_a_reason_the_admin_role_and_a_recorded_audit(db: Db, app: asyncpg.Connection) -> None:
    records: list[BypassRecord] = []

    async def audit(record: BypassRecord) -> None:
        records.append(record)

    async def failing_audit(record: BypassRecord) -> None:
        raise RuntimeError("audit store down")

    admin = await asyncpg.connect(db.admin)
    try:
        with pytest.raises(BypassRefused) as err:
            async with tenant_bypass(admin, actor="ops-job", reason=" ", audit=audit):
                raise AssertionError("the body must not run")
        assert err.value.reason == "BYPASS_REASON_REQUIRED"
        with pytest.raises(BypassRefused) as err:
            async with tenant_bypass(app, actor="ops-job", reason="monthly report", audit=audit):
                raise AssertionError("the body must not run")
        assert err.value.reason == "BYPASS_NOT_ALLOWED"
        assert records == []
        with pytest.raises(RuntimeError, match="audit store down"):
            async with tenant_bypass(admin, actor="ops-job", reason="monthly report", audit=failing_audit):
                raise AssertionError("no audit record, no bypass")
        async with tenant_bypass(admin, actor="ops-job", reason="monthly report", audit=audit) as conn:
            assert await bodies(conn) == ["a1", "a2", "b1", "blank-tenant row"]
        assert records == [
            BypassRecord(actor="ops-job", reason="monthly report", database_role=db.admin.split("//")[1].split(":")[0])
        ]
    finally:
        await admin.close()


def test_identifiers_in_the_migration_are_validated() -> None:
    for bad in ({"table": "docs; DROP TABLE x"}, {"table": "Docs"}, {"table": "a.b.c"}, {"column": 'x"'}):
        kwargs: dict[str, Any] = {"table": "docs", **bad}
        with pytest.raises(InvalidArgument):
            isolation_policy_sql(kwargs.pop("table"), **kwargs)
    with pytest.raises(InvalidArgument):
        isolation_policy_sql("docs", setting="tenant")  # not a custom setting name
    with pytest.raises(InvalidArgument):
        isolation_policy_sql("docs", column_type="uuid); DROP TABLE docs; --")
    assert isolation_policy_sql("app.docs", column_type="uuid")[-1] == (
        'CREATE POLICY coresdk_tenant_isolation ON "app"."docs" USING ("tenant_id" = '
        "NULLIF(current_setting('coresdk.tenant_id', true), '')::uuid) WITH CHECK (\"tenant_id\" = "
        "NULLIF(current_setting('coresdk.tenant_id', true), '')::uuid)"
    )
