"""Access-token records and the revocation feed (the jtis sidecars poll), on SQLite or PostgreSQL.

Storage only: which tokens to revoke, and when, is decided by the OAuth rules (controlplane.oauth). Rows join the
revocation feed under one serialisation point so that sequence numbers become visible in order.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from controlplane.store.db import Database, Row, Tx, insert_rows
from controlplane.store.models import AccessRecord, dump_list, load_list

REVOCATIONS_LOCK = "coresdk-revocations"


class TokenStore(Protocol):
    """Access tokens inside one transaction."""

    async def insert_access(self, access: AccessRecord) -> None: ...
    async def access(self, jti: str) -> AccessRecord | None: ...
    async def revoke_jti(self, jti: str, now: float) -> list[str]: ...
    async def revoke_live_of_family(self, family_id: str, now: float) -> list[str]: ...
    async def revoke_live_of_client(
        self, client_id: str, now: float, holding_any_of: tuple[str, ...] | None = None
    ) -> list[str]: ...


class SqlTokenStore:
    def __init__(self, tx: Tx) -> None:
        self._tx = tx

    async def insert_access(self, access: AccessRecord) -> None:
        await insert_access(self._tx, access)

    async def access(self, jti: str) -> AccessRecord | None:
        row = await self._tx.fetchrow("SELECT * FROM access_tokens WHERE jti = $1", jti)
        return AccessRecord.from_row(row) if row else None

    async def _revoke_rows(self, rows: Iterable[Row], now: float) -> list[str]:
        jtis = []
        for row in rows:
            await self._tx.execute(
                "UPDATE access_tokens SET revoked_at = $1 WHERE jti = $2 AND revoked_at IS NULL", now, row["jti"]
            )
            await self._tx.execute(
                "INSERT INTO revocations (jti, expires_at, revoked_at) VALUES ($1, $2, $3)",
                row["jti"],
                row["expires_at"],
                now,
            )
            jtis.append(str(row["jti"]))
        return jtis

    async def revoke_jti(self, jti: str, now: float) -> list[str]:
        """Revoke one access token if it is not revoked yet (expired ones included: the feed says so until exp)."""
        await self._tx.serialize(REVOCATIONS_LOCK)
        rows = await self._tx.fetch(
            "SELECT jti, expires_at FROM access_tokens WHERE jti = $1 AND revoked_at IS NULL", jti
        )
        return await self._revoke_rows(rows, now)

    async def revoke_live_of_family(self, family_id: str, now: float) -> list[str]:
        await self._tx.serialize(REVOCATIONS_LOCK)
        rows = await self._tx.fetch(
            "SELECT jti, expires_at FROM access_tokens WHERE family_id = $1 AND revoked_at IS NULL AND expires_at > $2",
            family_id,
            now,
        )
        return await self._revoke_rows(rows, now)

    async def revoke_live_of_client(
        self, client_id: str, now: float, holding_any_of: tuple[str, ...] | None = None
    ) -> list[str]:
        """Revoke the client's live access tokens (only those carrying one of holding_any_of, when given)."""
        await self._tx.serialize(REVOCATIONS_LOCK)
        rows = await self._tx.fetch(
            "SELECT jti, expires_at, scopes FROM access_tokens "
            "WHERE client_id = $1 AND revoked_at IS NULL AND expires_at > $2",
            client_id,
            now,
        )
        if holding_any_of is not None:
            rows = [r for r in rows if any(s in holding_any_of for s in load_list(r["scopes"]))]
        return await self._revoke_rows(rows, now)


INSERT_ACCESS = "INSERT INTO access_tokens (jti, family_id, client_id, subject, scopes, issued_at, expires_at)"


def _access_row(a: AccessRecord) -> tuple[Any, ...]:
    return (a.jti, a.family_id, a.client_id, a.subject, dump_list(a.scopes), a.issued_at, a.expires_at)


async def insert_access(tx: Tx, a: AccessRecord) -> None:
    await insert_rows(tx, INSERT_ACCESS, [_access_row(a)])


def access_rows(records: list[AccessRecord]) -> list[tuple[Any, ...]]:
    """The access_tokens rows of several tokens (a group commit's, inserted with its events: db.insert_many)."""
    return [_access_row(a) for a in records]


class RevocationFeed(Protocol):
    async def revocations_since(self, since: int, now: float, limit: int = 1000) -> list[dict[str, Any]]: ...


class SqlRevocationFeed:
    """The feed sidecars poll: unexpired revoked jtis in sequence order."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def revocations_since(self, since: int, now: float, limit: int = 1000) -> list[dict[str, Any]]:
        async with self._db.transaction() as tx:
            rows = await tx.fetch(
                "SELECT seq, jti, expires_at FROM revocations WHERE seq > $1 AND expires_at > $2 ORDER BY seq LIMIT $3",
                since,
                now,
                limit,
            )
        return [{"seq": int(r["seq"]), "jti": r["jti"], "exp": int(r["expires_at"])} for r in rows]
