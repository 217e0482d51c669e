"""Users of the sign-in page (subject, tenant, roles, Argon2id hash), inside one transaction."""

from __future__ import annotations

from typing import Protocol

from controlplane.store.db import Tx
from controlplane.store.models import User, dump_list


class UserStore(Protocol):
    async def insert_user(self, user: User) -> None: ...
    async def delete_user(self, user: User) -> None: ...
    async def user_by_subject(self, subject: str) -> User | None: ...
    async def user_by_id(self, user_id: str) -> User | None: ...
    async def list_users(self) -> list[User]: ...


class SqlUserStore:
    def __init__(self, tx: Tx) -> None:
        self._tx = tx

    async def insert_user(self, user: User) -> None:
        await self._tx.execute(
            "INSERT INTO users (id, subject, tenant_id, roles, password_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
            user.id,
            user.subject,
            user.tenant_id,
            dump_list(user.roles),
            user.password_hash,
            user.created_at,
        )

    async def delete_user(self, user: User) -> None:
        await self._tx.execute("DELETE FROM users WHERE id = $1", user.id)

    async def user_by_subject(self, subject: str) -> User | None:
        row = await self._tx.fetchrow("SELECT * FROM users WHERE subject = $1", subject)
        return User.from_row(row) if row else None

    async def user_by_id(self, user_id: str) -> User | None:
        row = await self._tx.fetchrow("SELECT * FROM users WHERE id = $1", user_id)
        return User.from_row(row) if row else None

    async def list_users(self) -> list[User]:
        return [User.from_row(r) for r in await self._tx.fetch("SELECT * FROM users ORDER BY created_at")]
