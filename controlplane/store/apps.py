"""OAuth apps (clients) and their secrets, inside one transaction, on SQLite or PostgreSQL."""

from __future__ import annotations

from typing import Protocol

from controlplane.store.db import Database, Row, Tx, placeholders
from controlplane.store.group_commit import Batcher
from controlplane.store.models import ClientSecret, OAuthApp, dump_list


class AppStore(Protocol):
    async def insert_app(self, app: OAuthApp) -> None: ...
    async def update_app(self, app: OAuthApp) -> tuple[str, ...]: ...
    async def delete_app(self, app: OAuthApp) -> None: ...
    async def app_by_id(self, app_id: str) -> OAuthApp | None: ...
    async def app_by_client_id(self, client_id: str) -> OAuthApp | None: ...
    async def list_apps(self) -> list[OAuthApp]: ...
    async def secrets_for(self, app_id: str) -> list[ClientSecret]: ...
    async def insert_secret(self, secret: ClientSecret) -> None: ...
    async def expire_secrets(self, app_id: str, at: float) -> None: ...


class SqlAppStore:
    def __init__(self, tx: Tx) -> None:
        self._tx = tx

    async def insert_app(self, app: OAuthApp) -> None:
        await self._tx.execute(
            "INSERT INTO oauth_apps (id, client_id, name, client_type, scopes, redirect_uris, grant_types, "
            "refresh_in_cookie, tenant_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            app.id,
            app.client_id,
            app.name,
            app.client_type,
            dump_list(app.scopes),
            dump_list(app.redirect_uris),
            dump_list(app.grant_types),
            int(app.refresh_in_cookie),
            app.tenant_id,
            app.created_at,
            app.updated_at,
        )

    async def update_app(self, app: OAuthApp) -> tuple[str, ...]:
        """Store the app's new fields; the scopes it had before (empty if it did not exist)."""
        before = await self.app_by_id(app.id)
        await self._tx.execute(
            "UPDATE oauth_apps SET name = $1, scopes = $2, redirect_uris = $3, grant_types = $4, "
            "refresh_in_cookie = $5, tenant_id = $6, updated_at = $7 WHERE id = $8",
            app.name,
            dump_list(app.scopes),
            dump_list(app.redirect_uris),
            dump_list(app.grant_types),
            int(app.refresh_in_cookie),
            app.tenant_id,
            app.updated_at,
            app.id,
        )
        return before.scopes if before else ()

    async def delete_app(self, app: OAuthApp) -> None:
        await self._tx.execute("DELETE FROM client_secrets WHERE app_id = $1", app.id)
        await self._tx.execute("DELETE FROM oauth_apps WHERE id = $1", app.id)

    async def app_by_id(self, app_id: str) -> OAuthApp | None:
        row = await self._tx.fetchrow("SELECT * FROM oauth_apps WHERE id = $1", app_id)
        return OAuthApp.from_row(row) if row else None

    async def app_by_client_id(self, client_id: str) -> OAuthApp | None:
        row = await self._tx.fetchrow("SELECT * FROM oauth_apps WHERE client_id = $1", client_id)
        return OAuthApp.from_row(row) if row else None

    async def list_apps(self) -> list[OAuthApp]:
        return [OAuthApp.from_row(r) for r in await self._tx.fetch("SELECT * FROM oauth_apps ORDER BY created_at")]

    async def secrets_for(self, app_id: str) -> list[ClientSecret]:
        rows = await self._tx.fetch("SELECT * FROM client_secrets WHERE app_id = $1 ORDER BY created_at", app_id)
        return [ClientSecret.from_row(r) for r in rows]

    async def insert_secret(self, secret: ClientSecret) -> None:
        await self._tx.execute(
            "INSERT INTO client_secrets (id, app_id, secret_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
            secret.id,
            secret.app_id,
            secret.secret_hash,
            secret.created_at,
            secret.expires_at,
        )

    async def expire_secrets(self, app_id: str, at: float) -> None:
        """Secrets that would live past `at` (or forever) expire at `at`."""
        await self._tx.execute(
            "UPDATE client_secrets SET expires_at = $1 WHERE app_id = $2 AND (expires_at IS NULL OR expires_at > $3)",
            at,
            app_id,
            at,
        )


_CLIENTS_WITH_SECRETS = (
    "SELECT a.*, s.id AS secret_id, s.secret_hash, s.created_at AS secret_created_at, "
    "s.expires_at AS secret_expires_at FROM oauth_apps a LEFT JOIN client_secrets s ON s.app_id = a.id "
    "WHERE a.client_id IN ({ids}) ORDER BY s.created_at"
)


Found = tuple[OAuthApp, list[ClientSecret]]


class ClientLookup(Protocol):
    async def client_with_secrets(self, client_id: str) -> Found | None: ...


class SqlClientLookup:
    """The token endpoint's client lookup: the app and its secrets, read outside any write transaction.

    It runs on every token, revocation and introspection request. The lookups waiting at one moment are one
    statement on its own: one round trip (PostgreSQL) or one hop to SQLite's reader for all of them, never behind
    a commit. Each lookup's statement starts after the lookup was asked for, so it sees every change committed
    before the request came (a deleted app, a rotated-out secret), as a transaction of its own would.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._lookups: Batcher[str, Found | None] = Batcher(self._lookup)

    async def client_with_secrets(self, client_id: str) -> Found | None:
        """The lookups that arrive while one is at the database are answered together, by one statement."""
        return await self._lookups.submit(client_id)

    async def _lookup(self, client_ids: list[str]) -> list[Found | None]:
        distinct = list(dict.fromkeys(client_ids))
        rows = await self._db.read(_CLIENTS_WITH_SECRETS.format(ids=placeholders(distinct)), *distinct)
        by_client: dict[str, list[Row]] = {}
        for row in rows:
            by_client.setdefault(row["client_id"], []).append(row)
        found = {client_id: _found(app_rows) for client_id, app_rows in by_client.items()}
        return [found.get(client_id) for client_id in client_ids]


def _found(rows: list[Row]) -> Found:
    """One app's rows of the join: the app, and its secrets (none: a LEFT JOIN row of NULLs)."""
    secrets = [
        ClientSecret.from_row(
            {
                "id": r["secret_id"],
                "app_id": r["id"],
                "secret_hash": r["secret_hash"],
                "created_at": r["secret_created_at"],
                "expires_at": r["secret_expires_at"],
            }
        )
        for r in rows
        if r["secret_id"] is not None
    ]
    return OAuthApp.from_row(rows[0]), secrets
