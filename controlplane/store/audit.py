"""The control plane's audit store: ingest with chain rules, its own chain, queries, checkpoints, alerts.

Ingest never overwrites: a record already stored at (chain_id, seq) is accepted again only if identical
(idempotent shipping); anything else — a different hash there, a gap, a broken link, a hash that does not match
the bytes — is refused and recorded as an alert.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from controlplane.store.db import Database, Tx, insert_rows
from coresdk.audit.chain import StoredRecord
from coresdk.audit.checkpoint import CheckpointError
from coresdk.audit.record import GENESIS_HASH, seal, validate_fields
from coresdk.masking.fields import mask_fields

OWN_CHAIN = "controlplane"


class CheckpointConflict(CheckpointError):
    """A checkpoint for another root at a size already signed: refused, the stored one stands."""

    def __init__(self, chain_id: str, tree_size: int) -> None:
        super().__init__(f"chain {chain_id!r} already has a checkpoint of another root at size {tree_size}")


@dataclass(frozen=True)
class IngestRefusal:
    chain_id: str
    seq: int
    reason: str  # hash_mismatch | gap | broken_link | rewritten_history | malformed | reserved_chain
    detail: str


async def _head(tx: Tx, chain_id: str) -> tuple[int, str]:
    row = await tx.fetchrow(
        "SELECT seq, record_hash FROM audit_records WHERE chain_id = $1 ORDER BY seq DESC LIMIT 1", chain_id
    )
    return (int(row["seq"]), str(row["record_hash"])) if row else (0, GENESIS_HASH)


_INSERT = (
    "INSERT INTO audit_records (chain_id, seq, record_id, ts, actor, action, resource, outcome, tenant_id, "
    "canonical, record_hash, previous_hash, received_at)"
)


def _row(
    chain_id: str, seq: int, canonical: str, record_hash: str, body: dict[str, Any], now: float
) -> tuple[Any, ...]:
    return (
        chain_id,
        seq,
        str(body.get("id", "")),
        str(body.get("timestamp", "")),
        str(body.get("actor", "")),
        str(body.get("action", "")),
        str(body.get("resource", "")),
        str(body.get("outcome", "")),
        str(body.get("tenant_id", "")),
        canonical,
        record_hash,
        str(body.get("previous_hash", "")),
        now,
    )


async def _insert(tx: Tx, chain_id: str, seq: int, canonical: str, record_hash: str, body: dict[str, Any]) -> None:
    await insert_rows(tx, _INSERT, [_row(chain_id, seq, canonical, record_hash, body, time.time())])


async def append_own(tx: Tx, fields: dict[str, Any]) -> None:
    """Chain one of the control plane's own events (token events, admin actions) inside the caller's transaction."""
    await append_own_many(tx, [fields])


OWN_CHAIN_LOCK = f"audit:{OWN_CHAIN}"  # held while the control plane's own chain grows (one writer at a time)
AUDIT_INSERT = _INSERT


async def append_own_many(tx: Tx, records: list[dict[str, Any]]) -> None:
    """Chain several of the control plane's own events, in order, inside the caller's transaction.

    The chain head is read once and the rows written in one statement: a group commit of many token
    issuances pays for one head lookup and one statement, not one each. Each record is sealed exactly as
    append_own seals one (masked, validated, canonical bytes hashed once); the body stored beside the canonical
    bytes is the one that was sealed, not a re-parse of them.
    """
    await insert_rows(tx, _INSERT, await own_rows(tx, records))


async def own_rows(tx: Tx, records: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The audit_records rows that chain `records` after the head, with the chain locked until tx ends: the
    caller inserts them in tx (append_own_many, or with other rows in one statement: db.insert_many)."""
    if not records:
        return []
    await tx.serialize(OWN_CHAIN_LOCK)
    seq, previous = await _head(tx, OWN_CHAIN)
    now = time.time()
    rows = []
    for fields in records:
        masked, _ = mask_fields(fields.get("metadata", {}))
        body = validate_fields({**fields, "metadata": masked})
        seq += 1
        sealed = seal(body, OWN_CHAIN, seq, previous)
        rows.append(
            _row(
                OWN_CHAIN, seq, sealed.canonical.decode(), sealed.record_hash, {**body, "previous_hash": previous}, now
            )
        )
        previous = sealed.record_hash
    return rows


class AuditStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def ingest(self, records: list[dict[str, Any]]) -> tuple[int, int, IngestRefusal | None]:
        """(stored, already present, refusal). Records before a refusal are kept; nothing after it is."""
        stored = duplicates = 0
        refusal: IngestRefusal | None = None
        async with self.db.transaction() as tx:
            for item in records:
                chain_id, seq = str(item["chain_id"]), int(item["seq"])
                canonical, record_hash = str(item["canonical"]), str(item["record_hash"])
                await tx.serialize(f"audit:{chain_id}")

                def refuse(reason: str, detail: str, c: str = chain_id, s: int = seq) -> IngestRefusal:
                    return IngestRefusal(c, s, reason, detail)

                if chain_id == OWN_CHAIN:
                    refusal = refuse("reserved_chain", "this chain belongs to the control plane")
                    break
                if hashlib.sha256(canonical.encode()).hexdigest() != record_hash:
                    refusal = refuse("hash_mismatch", "record_hash is not SHA-256 of the canonical bytes")
                    break
                try:
                    body = json.loads(canonical)
                except ValueError:
                    body = None
                if not isinstance(body, dict) or body.get("chain_id") != chain_id or body.get("seq") != seq:
                    refusal = refuse("malformed", "canonical record does not match its chain position")
                    break
                existing = await tx.fetchrow(
                    "SELECT record_hash FROM audit_records WHERE chain_id = $1 AND seq = $2", chain_id, seq
                )
                if existing is not None:
                    if existing["record_hash"] == record_hash:
                        duplicates += 1
                        continue
                    refusal = refuse("rewritten_history", "a different record is already stored at this position")
                    break
                head_seq, head_hash = await _head(tx, chain_id)
                if seq != head_seq + 1:
                    refusal = refuse("gap", f"expected seq {head_seq + 1}")
                    break
                if body.get("previous_hash") != head_hash:
                    refusal = refuse("broken_link", "previous_hash does not match the stored chain head")
                    break
                await _insert(tx, chain_id, seq, canonical, record_hash, body)
                stored += 1
        if refusal is not None:
            await self.alert(refusal.chain_id, refusal.seq, refusal.reason, refusal.detail)
        return stored, duplicates, refusal

    async def alert(self, chain_id: str, seq: int, reason: str, detail: str) -> None:
        async with self.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO audit_alerts (chain_id, seq, reason, detail, created_at) VALUES ($1, $2, $3, $4, $5)",
                chain_id,
                seq,
                reason,
                detail,
                time.time(),
            )

    async def alerts(self, limit: int = 100) -> list[dict[str, Any]]:
        async with self.db.transaction() as tx:
            return [dict(r) for r in await tx.fetch("SELECT * FROM audit_alerts ORDER BY id DESC LIMIT $1", limit)]

    async def chains(self) -> list[tuple[str, int]]:
        async with self.db.transaction() as tx:
            rows = await tx.fetch(
                "SELECT chain_id, MAX(seq) AS head FROM audit_records GROUP BY chain_id ORDER BY chain_id"
            )
        return [(str(r["chain_id"]), int(r["head"])) for r in rows]

    async def chain_records(self, chain_id: str, from_seq: int = 1, limit: int | None = None) -> list[StoredRecord]:
        sql = (
            "SELECT seq, canonical, record_hash FROM audit_records WHERE chain_id = $1 AND seq >= $2 AND pruned = 0 "
            "ORDER BY seq"
        )
        args: list[Any] = [chain_id, from_seq]
        if limit is not None:
            sql += " LIMIT $3"
            args.append(limit)
        async with self.db.transaction() as tx:
            rows = await tx.fetch(sql, *args)
        return [
            StoredRecord(chain_id, int(r["seq"]), str(r["canonical"]).encode(), str(r["record_hash"])) for r in rows
        ]

    async def record_hashes(self, chain_id: str, tree_size: int | None = None) -> list[bytes]:
        sql = "SELECT record_hash FROM audit_records WHERE chain_id = $1 ORDER BY seq"
        args: list[Any] = [chain_id]
        if tree_size is not None:
            sql += " LIMIT $2"
            args.append(tree_size)
        async with self.db.transaction() as tx:
            rows = await tx.fetch(sql, *args)
        return [bytes.fromhex(str(r["record_hash"])) for r in rows]

    async def query(self, filters: dict[str, str], after: tuple[str, int] | None, limit: int) -> list[dict[str, Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        for column in ("chain_id", "actor", "action", "resource", "outcome", "tenant_id"):
            if column in filters:
                args.append(filters[column])
                clauses.append(f"{column} = ${len(args)}")
        if "from" in filters:
            args.append(filters["from"])
            clauses.append(f"ts >= ${len(args)}")
        if "to" in filters:
            args.append(filters["to"])
            clauses.append(f"ts < ${len(args)}")
        if after is not None:
            args.append(after[0])
            args.append(after[0])
            args.append(after[1])
            clauses.append(f"(chain_id > ${len(args) - 2} OR (chain_id = ${len(args) - 1} AND seq > ${len(args)}))")
        clauses.append("pruned = 0")
        where = f"WHERE {' AND '.join(clauses)}"
        args.append(limit)
        async with self.db.transaction() as tx:
            rows = await tx.fetch(
                f"SELECT chain_id, seq, canonical, record_hash FROM audit_records {where} "  # noqa: S608
                f"ORDER BY chain_id, seq LIMIT ${len(args)}",
                *args,
            )
        return [{**json.loads(r["canonical"]), "record_hash": r["record_hash"]} for r in rows]

    async def add_checkpoint(self, chain_id: str, tree_size: int, root_hash: str, note: str) -> str:
        """Store a checkpoint unless one exists at this size; return the stored note (the earlier one if so).

        Two leaders in a handover could both sign the same size: one checkpoint per size is kept, and one for a
        different root at a signed size is refused loudly, since it would mean the chain changed under a signature.
        """
        async with self.db.transaction() as tx:
            await tx.serialize(f"coresdk-checkpoint:{chain_id}")
            existing = await tx.fetchrow(
                "SELECT root_hash, note FROM audit_checkpoints WHERE chain_id = $1 AND tree_size = $2 LIMIT 1",
                chain_id,
                tree_size,
            )
            if existing is not None:
                if existing["root_hash"] != root_hash:
                    raise CheckpointConflict(chain_id, tree_size)
                return str(existing["note"])
            await tx.execute(
                "INSERT INTO audit_checkpoints (chain_id, tree_size, root_hash, note, created_at) VALUES ($1, $2, $3, $4, $5)",
                chain_id,
                tree_size,
                root_hash,
                note,
                time.time(),
            )
        return note

    async def latest_checkpoint(self, chain_id: str) -> dict[str, Any] | None:
        async with self.db.transaction() as tx:
            row = await tx.fetchrow(
                "SELECT * FROM audit_checkpoints WHERE chain_id = $1 ORDER BY tree_size DESC, id DESC LIMIT 1", chain_id
            )
        return dict(row) if row else None

    async def latest_checkpoint_upto(self, chain_id: str, tree_size: int) -> dict[str, Any] | None:
        async with self.db.transaction() as tx:
            row = await tx.fetchrow(
                "SELECT * FROM audit_checkpoints WHERE chain_id = $1 AND tree_size <= $2 ORDER BY tree_size DESC, id DESC LIMIT 1",
                chain_id,
                tree_size,
            )
        return dict(row) if row else None

    async def retention(self, chain_id: str) -> dict[str, Any] | None:
        async with self.db.transaction() as tx:
            row = await tx.fetchrow("SELECT * FROM audit_retention WHERE chain_id = $1", chain_id)
        return dict(row) if row else None

    async def prunable_through(self, chain_id: str, cutoff_ts: str, sink_names: list[str]) -> int:
        """Largest K such that records 1..K are older than the cutoff and every sink has received them."""
        async with self.db.transaction() as tx:
            row = await tx.fetchrow(
                "SELECT MIN(seq) AS m FROM audit_records WHERE chain_id = $1 AND ts >= $2", chain_id, cutoff_ts
            )
            head = await _head(tx, chain_id)
            limit = head[0] if row is None or row["m"] is None else int(row["m"]) - 1
            for sink in sink_names:
                pos = await tx.fetchrow(
                    "SELECT seq FROM audit_sink_positions WHERE sink = $1 AND chain_id = $2", sink, chain_id
                )
                limit = min(limit, int(pos["seq"]) if pos else 0)
        return limit

    async def prune(self, chain_id: str, through: int, last_hash: str, note: str) -> int:
        """Drop the content of records 1..through (hashes stay, so trees still verify) under a retention checkpoint."""
        async with self.db.transaction() as tx:
            await tx.serialize(f"audit:{chain_id}")
            count = await tx.execute(
                "UPDATE audit_records SET canonical = '', actor = '', action = '', resource = '', outcome = '', "
                "tenant_id = '', pruned = 1 WHERE chain_id = $1 AND seq <= $2 AND pruned = 0",
                chain_id,
                through,
            )
            updated = await tx.execute(
                "UPDATE audit_retention SET pruned_through = $1, last_hash = $2, note = $3, created_at = $4 WHERE chain_id = $5",
                through,
                last_hash,
                note,
                time.time(),
                chain_id,
            )
            if updated == 0:
                await tx.execute(
                    "INSERT INTO audit_retention (chain_id, pruned_through, last_hash, note, created_at) VALUES ($1, $2, $3, $4, $5)",
                    chain_id,
                    through,
                    last_hash,
                    note,
                    time.time(),
                )
        return int(count)

    async def checkpoints(self, chain_id: str) -> list[dict[str, Any]]:
        async with self.db.transaction() as tx:
            rows = await tx.fetch(
                "SELECT * FROM audit_checkpoints WHERE chain_id = $1 ORDER BY tree_size, id", chain_id
            )
        return [dict(r) for r in rows]

    async def sink_position(self, sink: str, chain_id: str) -> int:
        async with self.db.transaction() as tx:
            row = await tx.fetchrow(
                "SELECT seq FROM audit_sink_positions WHERE sink = $1 AND chain_id = $2", sink, chain_id
            )
        return int(row["seq"]) if row else 0

    async def set_sink_position(self, sink: str, chain_id: str, seq: int) -> None:
        async with self.db.transaction() as tx:
            updated = await tx.execute(
                "UPDATE audit_sink_positions SET seq = $1 WHERE sink = $2 AND chain_id = $3", seq, sink, chain_id
            )
            if updated == 0:
                await tx.execute(
                    "INSERT INTO audit_sink_positions (sink, chain_id, seq) VALUES ($1, $2, $3)", sink, chain_id, seq
                )
