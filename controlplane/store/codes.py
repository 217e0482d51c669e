"""Authorization codes (stored by hash), inside one transaction, on SQLite or PostgreSQL.

`mark_code_used_if_unused` is the single-use primitive: one compare-and-set UPDATE, so of two concurrent
redemptions exactly one gets the code. What a second redemption means is the grant's rule
(controlplane.oauth.grants.authorization_code).
"""

from __future__ import annotations

from typing import Protocol

from controlplane.store.db import Tx
from controlplane.store.models import AuthCode, dump_list


class CodeStore(Protocol):
    async def insert_code(self, code: AuthCode) -> None: ...
    async def mark_code_used_if_unused(self, code_hash: str, now: float) -> AuthCode | None: ...
    async def code(self, code_hash: str) -> AuthCode | None: ...
    async def link_family(self, code_hash: str, family_id: str) -> None: ...
    async def burn_unused_of_subject(self, subject: str) -> int: ...


class SqlCodeStore:
    def __init__(self, tx: Tx) -> None:
        self._tx = tx

    async def insert_code(self, code: AuthCode) -> None:
        await self._tx.execute(
            "INSERT INTO auth_codes (code_hash, client_id, redirect_uri, code_challenge, subject, tenant_id, roles, "
            "scopes, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            code.code_hash,
            code.client_id,
            code.redirect_uri,
            code.code_challenge,
            code.subject,
            code.tenant_id,
            dump_list(code.roles),
            dump_list(code.scopes),
            code.created_at,
            code.expires_at,
        )

    async def mark_code_used_if_unused(self, code_hash: str, now: float) -> AuthCode | None:
        """The code, now marked used, if this call was the one to use it; None if unknown or used before."""
        row = await self._tx.fetchrow(
            "UPDATE auth_codes SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL RETURNING *", now, code_hash
        )
        return AuthCode.from_row(row) if row else None

    async def code(self, code_hash: str) -> AuthCode | None:
        row = await self._tx.fetchrow("SELECT * FROM auth_codes WHERE code_hash = $1", code_hash)
        return AuthCode.from_row(row) if row else None

    async def link_family(self, code_hash: str, family_id: str) -> None:
        """Remember which family a code issued, so that a replay of the code can revoke it."""
        await self._tx.execute("UPDATE auth_codes SET family_id = $1 WHERE code_hash = $2", family_id, code_hash)

    async def burn_unused_of_subject(self, subject: str) -> int:
        return await self._tx.execute("DELETE FROM auth_codes WHERE subject = $1 AND used_at IS NULL", subject)
