"""Refresh-token families and their refresh tokens, inside one transaction, on SQLite or PostgreSQL.

The primitives are compare-and-set (`... WHERE used_at IS NULL`, `... WHERE revoked_at IS NULL`), never a read
followed by a separate write, so the rules built on them (controlplane.oauth.grants) cannot race. What a reuse
means, when a token has expired and which client may present it are decided there, not here.
"""

from __future__ import annotations

from typing import Protocol

from controlplane.store.db import Tx
from controlplane.store.models import RefreshRecord, TokenFamily, dump_list
from controlplane.store.tokens import REVOCATIONS_LOCK, TokenStore


def subject_lock(subject: str) -> str:
    """The serialisation point shared by code redemption, refresh rotation and user deletion."""
    return f"user:{subject}"


class FamilyStore(Protocol):
    async def insert_family(self, family: TokenFamily) -> None: ...
    async def family(self, family_id: str) -> TokenFamily | None: ...
    async def family_locked(self, family_id: str) -> TokenFamily | None: ...
    async def live_families_of_client(self, client_id: str) -> list[TokenFamily]: ...
    async def live_families_of_subject(self, subject: str) -> list[TokenFamily]: ...
    async def set_scopes(self, family_id: str, scopes: tuple[str, ...]) -> None: ...
    async def revoke_family(self, family_id: str, reason: str, now: float) -> list[str]: ...
    async def insert_refresh(self, refresh: RefreshRecord) -> None: ...
    async def refresh(self, token_hash: str) -> RefreshRecord | None: ...
    async def rotate_refresh_if_current(self, token_hash: str, now: float, successor_blob: str | None) -> bool: ...


class SqlFamilyStore:
    def __init__(self, tx: Tx, tokens: TokenStore) -> None:
        self._tx = tx
        self._tokens = tokens

    async def insert_family(self, family: TokenFamily) -> None:
        await self._tx.execute(
            "INSERT INTO token_families (id, client_id, subject, tenant_id, roles, scopes, created_at, "
            "absolute_expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            family.id,
            family.client_id,
            family.subject,
            family.tenant_id,
            dump_list(family.roles),
            dump_list(family.scopes),
            family.created_at,
            family.absolute_expires_at,
        )

    async def family(self, family_id: str) -> TokenFamily | None:
        row = await self._tx.fetchrow("SELECT * FROM token_families WHERE id = $1", family_id)
        return TokenFamily.from_row(row) if row else None

    async def family_locked(self, family_id: str) -> TokenFamily | None:
        """The family, read after taking its subject's lock: a family revoked a moment ago is seen as revoked.

        Where the transaction already excludes other writers (SQLite), the first read is final.
        """
        family = await self.family(family_id)
        if family is None or self._tx.single_writer:
            return family
        await self._tx.serialize(subject_lock(family.subject))
        return await self.family(family_id)

    async def live_families_of_client(self, client_id: str) -> list[TokenFamily]:
        rows = await self._tx.fetch(
            "SELECT * FROM token_families WHERE client_id = $1 AND revoked_at IS NULL", client_id
        )
        return [TokenFamily.from_row(r) for r in rows]

    async def live_families_of_subject(self, subject: str) -> list[TokenFamily]:
        rows = await self._tx.fetch("SELECT * FROM token_families WHERE subject = $1 AND revoked_at IS NULL", subject)
        return [TokenFamily.from_row(r) for r in rows]

    async def set_scopes(self, family_id: str, scopes: tuple[str, ...]) -> None:
        await self._tx.execute("UPDATE token_families SET scopes = $1 WHERE id = $2", dump_list(scopes), family_id)

    async def revoke_family(self, family_id: str, reason: str, now: float) -> list[str]:
        """Revoke the family (if live) and every live access token of it; the jtis that joined the feed."""
        await self._tx.serialize(REVOCATIONS_LOCK)
        await self._tx.execute(
            "UPDATE token_families SET revoked_at = $1, revoked_reason = $2 WHERE id = $3 AND revoked_at IS NULL",
            now,
            reason,
            family_id,
        )
        return await self._tokens.revoke_live_of_family(family_id, now)

    async def insert_refresh(self, refresh: RefreshRecord) -> None:
        await self._tx.execute(
            "INSERT INTO refresh_tokens (token_hash, family_id, created_at, idle_expires_at) VALUES ($1, $2, $3, $4)",
            refresh.token_hash,
            refresh.family_id,
            refresh.created_at,
            refresh.idle_expires_at,
        )

    async def refresh(self, token_hash: str) -> RefreshRecord | None:
        row = await self._tx.fetchrow("SELECT * FROM refresh_tokens WHERE token_hash = $1", token_hash)
        return RefreshRecord.from_row(row) if row else None

    async def rotate_refresh_if_current(self, token_hash: str, now: float, successor_blob: str | None) -> bool:
        """Mark the token used (keeping the sealed successor for the grace window); False if it was used already."""
        won = await self._tx.execute(
            "UPDATE refresh_tokens SET used_at = $1, successor_blob = $2 WHERE token_hash = $3 AND used_at IS NULL",
            now,
            successor_blob,
            token_hash,
        )
        return won == 1
