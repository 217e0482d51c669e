"""Row-level tenant isolation for asyncpg applications, so a forgotten `WHERE tenant_id = ...` leaks nothing.

- `enable_tenant_isolation` (a migration step): RLS enabled and FORCED on named tables (so the table owner is
  subject too) with one policy: a row is visible and writable only when its tenant column equals the session's
  `coresdk.tenant_id` setting. The setting is read with `current_setting(..., true)` and an empty value counts as
  none, so a query outside a tenant unit of work sees no rows and cannot write any (fail closed).
- `tenant_transaction`: a unit of work in the verified principal's tenant: a transaction with the setting made
  transaction-local (`set_config(name, value, true)`, parameterised; never string-built SQL), so it cannot outlive
  the unit of work on a pooled connection. It refuses a connection whose role bypasses RLS (superuser or
  BYPASSRLS): isolation would silently not hold.
- `tenant_bypass`: admin jobs that must see every tenant run on a connection whose role has BYPASSRLS, only with a
  stated reason, and only after the audit callback has recorded it (an audit failure means no bypass). The bypass
  is a separate database role, not a setting, so SQL injected into ordinary tenant code cannot switch it on.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from coresdk.errors import InvalidArgument, PermissionDenied

SETTING = "coresdk.tenant_id"
POLICY = "coresdk_tenant_isolation"
_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_SETTING = re.compile(r"[a-z_][a-z0-9_]{0,30}\.[a-z_][a-z0-9_]{0,30}")
_TYPE = re.compile(r"[a-z][a-z0-9_ ]{0,40}")


class HasTenant(Protocol):
    @property
    def tenant_id(self) -> str: ...


class TenantRequired(PermissionDenied):
    """No tenant to act in: there is no default tenant."""


class IsolationNotEnforced(PermissionDenied):
    """The connection's role bypasses row-level security, so a tenant unit of work would see every tenant."""


class BypassRefused(PermissionDenied):
    """A bypass without a reason, or on a role that is not allowed to bypass."""


@dataclass(frozen=True)
class BypassRecord:
    """What the audit callback is given before a bypass runs."""

    actor: str
    reason: str
    database_role: str
    action: str = "tenancy.rls_bypass"


def _identifier(name: str, what: str) -> str:
    if not _NAME.fullmatch(name):
        raise InvalidArgument("INVALID_IDENTIFIER", f"{what} {name[:70]!r}: lower-case letters, digits and _")
    return f'"{name}"'


def _table(name: str) -> str:
    return ".".join(_identifier(part, "table") for part in name.split(".", 1))


def _setting(name: str) -> str:
    if not _SETTING.fullmatch(name):
        raise InvalidArgument("INVALID_SETTING", "a custom setting is named `prefix.name` (lower case)")
    return name


def isolation_policy_sql(
    table: str, *, column: str = "tenant_id", column_type: str = "text", setting: str = SETTING
) -> list[str]:
    """The statements `enable_tenant_isolation` runs for one table (idempotent), for reviews and SQL migrations."""
    if not _TYPE.fullmatch(column_type):
        raise InvalidArgument("INVALID_IDENTIFIER", f"column type {column_type[:40]!r}")
    t, c = _table(table), _identifier(column, "column")
    current = f"NULLIF(current_setting('{_setting(setting)}', true), '')::{column_type}"
    return [
        f"ALTER TABLE {t} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {t} FORCE ROW LEVEL SECURITY",
        f"DROP POLICY IF EXISTS {POLICY} ON {t}",
        f"CREATE POLICY {POLICY} ON {t} USING ({c} = {current}) WITH CHECK ({c} = {current})",
    ]


async def enable_tenant_isolation(
    conn: Any,
    tables: Sequence[str],
    *,
    column: str = "tenant_id",
    column_type: str = "text",
    setting: str = SETTING,
) -> None:
    """Enable and force row-level security with the tenant policy on each table, in one transaction."""
    if not tables:
        raise InvalidArgument("INVALID_ARGUMENT", "name at least one table")
    statements = [
        s for t in tables for s in isolation_policy_sql(t, column=column, column_type=column_type, setting=setting)
    ]
    async with conn.transaction():
        for statement in statements:
            await conn.execute(statement)


def _tenant_of(tenant: HasTenant | str) -> str:
    value = tenant if isinstance(tenant, str) else getattr(tenant, "tenant_id", "")
    if not isinstance(value, str) or not value.strip():
        raise TenantRequired("TENANT_REQUIRED", "the principal names no tenant; there is no default tenant")
    return value


_ROLE = "SELECT current_user::text, rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user"
# One round trip: set the tenant for this transaction and learn whether the role would ignore the policy anyway.
_ENTER = (
    "SELECT set_config($1, $2, true), r.bypass FROM "
    "(SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user) AS r(bypass)"
)


@asynccontextmanager
async def tenant_transaction(conn: Any, tenant: HasTenant | str, *, setting: str = SETTING) -> AsyncIterator[Any]:
    """Run the body in a transaction where row-level security admits only `tenant`'s rows (a verified principal
    or its tenant id). The setting is local to the transaction and gone when it ends."""
    tenant_id, name = _tenant_of(tenant), _setting(setting)
    async with conn.transaction():
        row = await conn.fetchrow(_ENTER, name, tenant_id)
        if row is None or row["bypass"] is not False:
            raise IsolationNotEnforced(
                "RLS_NOT_ENFORCED", "the database role bypasses row-level security (superuser or BYPASSRLS)"
            )
        yield conn


@asynccontextmanager
async def tenant_bypass(
    conn: Any, *, actor: str, reason: str, audit: Callable[[BypassRecord], Awaitable[None]]
) -> AsyncIterator[Any]:
    """Run an admin job across tenants: only on a role that bypasses RLS, only with a reason, and only once the
    audit callback has returned (if it raises, the job does not run)."""
    if not reason.strip() or not actor.strip():
        raise BypassRefused("BYPASS_REASON_REQUIRED", "a tenant bypass needs an actor and a reason")
    row = await conn.fetchrow(_ROLE)
    if row is None or row[1] is not True:
        raise BypassRefused(
            "BYPASS_NOT_ALLOWED", "this database role cannot bypass row-level security; use the admin role"
        )
    await audit(BypassRecord(actor=actor, reason=reason, database_role=row[0]))
    async with conn.transaction():
        yield conn
