"""The control plane's storage, one narrow interface per aggregate, every rule one transaction on either backend.

`async with store.transaction() as tx:` gives the aggregates bound to one database transaction (`tx.apps`,
`tx.users`, `tx.codes`, `tx.families`, `tx.tokens`, `tx.keys`, `tx.events`), so a multi-step OAuth rule
(controlplane.oauth.grants) commits as a whole or not at all. Storage decides no OAuth policy: the primitives are
compare-and-set writes and plain reads; what a reuse, an expiry or a foreign client means is decided by the rules.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from controlplane.store.apps import AppStore, SqlAppStore, SqlClientLookup
from controlplane.store.audit import OWN_CHAIN_LOCK
from controlplane.store.codes import CodeStore, SqlCodeStore
from controlplane.store.db import Database, Tx, insert_many
from controlplane.store.events import (
    Event,
    EventRecorder,
    SqlEventQueries,
    SqlEventRecorder,
    event_inserts,
    record_event,
)
from controlplane.store.families import FamilyStore, SqlFamilyStore
from controlplane.store.group_commit import GroupCommit
from controlplane.store.models import AccessRecord
from controlplane.store.signing_keys import SigningKeyStore, SqlSigningKeyStore
from controlplane.store.tokens import INSERT_ACCESS, SqlRevocationFeed, SqlTokenStore, TokenStore, access_rows
from controlplane.store.users import SqlUserStore, UserStore


@dataclass(frozen=True)
class StoreTx:
    """The aggregates inside one transaction."""

    tx: Tx
    apps: AppStore
    users: UserStore
    codes: CodeStore
    families: FamilyStore
    tokens: TokenStore
    keys: SigningKeyStore
    events: EventRecorder

    async def serialize(self, name: str) -> None:
        """Take a transaction-scoped lock named `name` (PostgreSQL; SQLite already has one writer at a time)."""
        await self.tx.serialize(name)


def bind(tx: Tx) -> StoreTx:
    tokens = SqlTokenStore(tx)
    return StoreTx(
        tx=tx,
        apps=SqlAppStore(tx),
        users=SqlUserStore(tx),
        codes=SqlCodeStore(tx),
        families=SqlFamilyStore(tx, tokens),
        tokens=tokens,
        keys=SqlSigningKeyStore(tx),
        events=SqlEventRecorder(tx),
    )


@dataclass(frozen=True)
class IssuedAccess:
    """An access token issued without a family (client_credentials), recorded with its "issued" event."""

    access: AccessRecord
    ip: str
    grant_type: str


ISSUED_GENERATED = frozenset({"grant_type", "jti"})  # a grant type from GRANT_TYPES, a jti the issuer drew


async def _write_issued(tx: Tx, batch: list[IssuedAccess]) -> None:
    """A batch of issuances: the access rows and their "issued" events (token_events rows and chain records); on
    PostgreSQL one statement for all three tables, in a transaction whose BEGIN took the chain's lock."""
    events = [
        Event(
            "issued",
            item.access.issued_at,
            client_id=item.access.client_id,
            subject=item.access.subject,
            ip=item.ip,
            detail={"grant_type": item.grant_type, "jti": item.access.jti},
            generated=ISSUED_GENERATED,
        )
        for item in batch
    ]
    await insert_many(
        tx, [(INSERT_ACCESS, access_rows([item.access for item in batch])), *await event_inserts(tx, events)]
    )


class Store:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.events = SqlEventQueries(db)
        self.clients = SqlClientLookup(db)
        self.revocations = SqlRevocationFeed(db)
        self._access_commits: GroupCommit[IssuedAccess] = GroupCommit(db, _write_issued, locks=(OWN_CHAIN_LOCK,))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[StoreTx]:
        async with self.db.transaction() as tx:
            yield bind(tx)

    async def add_event(self, type_: str, now: float, **fields: Any) -> None:
        """An event with no other change to record (a failed sign-in, an admin action outside the store)."""
        async with self.db.transaction() as tx:
            await record_event(tx, type_, now, **fields)

    async def record_access(self, access: AccessRecord, ip: str, grant_type: str) -> None:
        """Durably record an access token issued without a family, group-committed with concurrent ones."""
        await self._access_commits.submit(IssuedAccess(access, ip, grant_type))
