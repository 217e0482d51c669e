"""Enrolled sidecar credentials: one per sidecar, stored as SHA-256 of a 256-bit secret, bound to the chains it writes.

A binding is a set of exact chain ids and chain-id prefixes. Bindings of live credentials never overlap, so no
sidecar can write (or backdate a record into) a chain another sidecar writes; the control plane's own chain is
never bindable. Enrolment and revocation are events in the control plane's own audit chain, in the same
transaction as the change they record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from controlplane.store.audit import OWN_CHAIN, append_own
from controlplane.store.db import Database, Row


@dataclass(frozen=True)
class Binding:
    chains: tuple[str, ...]
    prefixes: tuple[str, ...]

    def allows(self, chain_id: str) -> bool:
        return chain_id in self.chains or any(chain_id.startswith(p) for p in self.prefixes)

    def overlap(self, other: Binding) -> str | None:
        """A chain id or prefix both bindings could write, or None."""
        for chain in self.chains:
            if other.allows(chain):
                return chain
        for chain in other.chains:
            if self.allows(chain):
                return chain
        for mine in self.prefixes:
            for theirs in other.prefixes:
                if mine.startswith(theirs) or theirs.startswith(mine):
                    return min(mine, theirs, key=len)
        return None

    def reserved(self) -> bool:
        """Whether the binding would reach the control plane's own chain."""
        return self.allows(OWN_CHAIN)


@dataclass(frozen=True)
class SidecarCredential:
    id: str
    name: str
    binding: Binding
    secret_hash: str
    created_at: float
    revoked_at: float | None

    @classmethod
    def from_row(cls, row: Row) -> SidecarCredential:
        return cls(
            id=str(row["id"]),
            name=str(row["name"]),
            binding=Binding(tuple(json.loads(row["chains"])), tuple(json.loads(row["prefixes"]))),
            secret_hash=str(row["secret_hash"]),
            created_at=float(row["created_at"]),
            revoked_at=None if row["revoked_at"] is None else float(row["revoked_at"]),
        )


class BindingConflict(Exception):
    """The binding overlaps a live credential's (or reaches the control plane's own chain)."""

    def __init__(self, chain: str, holder: str) -> None:
        super().__init__(f"{chain} is already writable by {holder}")
        self.chain = chain
        self.holder = holder


class SidecarStore(Protocol):
    async def enrol(self, credential: SidecarCredential, actor: str, ip: str) -> None: ...
    async def get(self, sidecar_id: str) -> SidecarCredential | None: ...
    async def list(self) -> list[SidecarCredential]: ...
    async def revoke(self, sidecar_id: str, now: float, actor: str, ip: str) -> SidecarCredential | None: ...


def _event(action: str, credential: SidecarCredential, actor: str, ip: str) -> dict[str, Any]:
    return {
        "actor": actor,
        "action": action,
        "resource": f"sidecar/{credential.id}",
        "outcome": "success",
        "ip": ip,
        "metadata": {
            "name": credential.name,
            "chains": list(credential.binding.chains),
            "prefixes": list(credential.binding.prefixes),
        },
    }


class SqlSidecarStore:
    """SidecarStore on the control plane's database (SQLite or PostgreSQL, the same SQL)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def enrol(self, credential: SidecarCredential, actor: str, ip: str) -> None:
        if credential.binding.reserved():
            raise BindingConflict(OWN_CHAIN, "the control plane")
        async with self.db.transaction() as tx:
            await tx.serialize("sidecar-bindings")  # two enrolments cannot both pass the overlap check
            for row in await tx.fetch("SELECT * FROM sidecar_credentials WHERE revoked_at IS NULL"):
                live = SidecarCredential.from_row(row)
                clash = credential.binding.overlap(live.binding)
                if clash is not None:
                    raise BindingConflict(clash, f"sidecar {live.id} ({live.name})")
            await tx.execute(
                "INSERT INTO sidecar_credentials (id, name, chains, prefixes, secret_hash, created_at) "
                "VALUES ($1, $2, $3, $4, $5, $6)",
                credential.id,
                credential.name,
                json.dumps(list(credential.binding.chains)),
                json.dumps(list(credential.binding.prefixes)),
                credential.secret_hash,
                credential.created_at,
            )
            await append_own(tx, _event("sidecar.enrol", credential, actor, ip))

    async def get(self, sidecar_id: str) -> SidecarCredential | None:
        async with self.db.transaction() as tx:
            row = await tx.fetchrow("SELECT * FROM sidecar_credentials WHERE id = $1", sidecar_id)
        return SidecarCredential.from_row(row) if row else None

    async def list(self) -> list[SidecarCredential]:
        async with self.db.transaction() as tx:
            rows = await tx.fetch("SELECT * FROM sidecar_credentials ORDER BY created_at, id")
        return [SidecarCredential.from_row(r) for r in rows]

    async def revoke(self, sidecar_id: str, now: float, actor: str, ip: str) -> SidecarCredential | None:
        """The credential, revoked (the event is written only by the call that revoked it); None if unknown."""
        async with self.db.transaction() as tx:
            changed = await tx.execute(
                "UPDATE sidecar_credentials SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL", now, sidecar_id
            )
            row = await tx.fetchrow("SELECT * FROM sidecar_credentials WHERE id = $1", sidecar_id)
            if row is None:
                return None
            credential = SidecarCredential.from_row(row)
            if changed:
                await append_own(tx, _event("sidecar.revoke", credential, actor, ip))
        return credential
