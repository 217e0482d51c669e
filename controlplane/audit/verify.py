"""Verification of the stored audit log: chains re-hashed, links and density checked, and checkpoints re-proven.

Incremental (default): records after the last verified point are re-hashed; the whole Merkle tree is recomputed from
stored leaf hashes and compared with the latest signed checkpoint, which catches any rewritten, deleted or inserted
record the checkpoint covers. Full: every record is re-hashed from genesis.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from controlplane.audit.checkpoints import Checkpointer
from controlplane.store.audit import AuditStore
from coresdk.audit import chain_id as chain_ids
from coresdk.audit.chain import verify_chain
from coresdk.audit.checkpoint import RETENTION, CheckpointError, open_checkpoint
from coresdk.audit.merkle import record_tree_leaves, root_from_leaf_hashes
from coresdk.audit.record import GENESIS_HASH


@dataclass
class Verifier:
    store: AuditStore
    checkpointer: Checkpointer
    # chain → (seq, record_hash) verified by a previous full or incremental pass
    verified: dict[str, tuple[int, str]] = field(default_factory=dict)

    async def verify(self, chain_filter: str | None, full: bool) -> dict[str, Any]:
        chains: list[dict[str, Any]] = []
        first_bad: dict[str, Any] | None = None
        total = 0
        for chain_id, _ in await self.store.chains():
            if chain_filter and chain_id != chain_filter:
                continue
            report = await self._verify_one(chain_id, full)
            total += report["records_checked"]
            chains.append(report)
            if not report["valid"] and first_bad is None:
                first_bad = {"chain_id": chain_id, "seq": report["first_bad_seq"], "reason": report["reason"]}
        body: dict[str, Any] = {"chain_valid": first_bad is None, "records_checked": total, "chains": chains}
        if first_bad is not None:
            body["first_bad"] = first_bad
        return body

    async def _retained_start(self, chain_id: str) -> tuple[int, str] | tuple[int, None]:
        """(last pruned seq, its hash) after checking the signed retention checkpoint; (seq, None) if it fails."""
        row = await self.store.retention(chain_id)
        if row is None:
            return 0, GENESIS_HASH
        through = int(row["pruned_through"])
        try:
            cp = open_checkpoint(row["note"], self.checkpointer.key_name, self.checkpointer.public_key)
        except CheckpointError:
            return through, None
        hashes = await self.store.record_hashes(chain_id, through)
        ok = (
            cp.origin == self.checkpointer.origin(chain_id, RETENTION)
            and cp.tree_size == through
            and len(hashes) == through
            and root_from_leaf_hashes(record_tree_leaves(hashes)) == cp.root_hash
            and hashes[-1].hex() == row["last_hash"]
        )
        return (through, str(row["last_hash"])) if ok else (through, None)

    async def _verify_one(self, chain_id: str, full: bool) -> dict[str, Any]:
        # a chain stored before chain ids had a grammar can hold no valid checkpoint: it is reported, never trusted
        valid_id = chain_ids.is_valid(chain_id)
        pruned_through, pruned_hash = await self._retained_start(chain_id) if valid_id else (0, None)
        if pruned_hash is None:
            self.verified.pop(chain_id, None)
            return {
                "chain_id": chain_id,
                "records_checked": 0,
                "head_seq": pruned_through,
                "head_hash": "",
                "valid": False,
                "mode": "full" if full else "incremental",
                "first_bad_seq": 1,
                "reason": "retention_mismatch" if valid_id else "invalid_chain_id",
            }
        start_seq, start_prev = (
            (pruned_through, pruned_hash) if full else self.verified.get(chain_id, (pruned_through, pruned_hash))
        )
        if start_seq < pruned_through:
            start_seq, start_prev = pruned_through, pruned_hash
        start_seq += 1
        records = await self.store.chain_records(chain_id, start_seq)
        result = verify_chain(chain_id, records, start_seq, start_prev)
        report: dict[str, Any] = {
            "chain_id": chain_id,
            "records_checked": result.records_checked,
            "head_seq": result.head_seq,
            "head_hash": result.head_hash,
            "valid": result.failure is None,
            "mode": "full" if full else "incremental",
        }
        if pruned_through:
            report["pruned_through"] = pruned_through
        if result.failure is not None:
            self.verified.pop(chain_id, None)
            return {**report, "first_bad_seq": result.failure.seq, "reason": result.failure.reason}
        problem = await self._check_checkpoint(chain_id, result.head_seq, report)
        if problem is not None:
            self.verified.pop(chain_id, None)
            return {**report, "valid": False, "first_bad_seq": problem[0], "reason": problem[1]}
        self.verified[chain_id] = (result.head_seq, result.head_hash)
        return report

    async def _check_checkpoint(self, chain_id: str, head_seq: int, report: dict[str, Any]) -> tuple[int, str] | None:
        latest = await self.store.latest_checkpoint(chain_id)
        signed = self.checkpointer.highest_signed.get(chain_id, 0)
        if latest is None:
            return (1, "checkpoint_missing") if signed else None
        try:
            cp = open_checkpoint(latest["note"], self.checkpointer.key_name, self.checkpointer.public_key)
        except CheckpointError:
            return int(latest["tree_size"]), "checkpoint_mismatch"
        if cp.origin != self.checkpointer.origin(chain_id) or cp.tree_size != int(latest["tree_size"]):
            return cp.tree_size, "checkpoint_mismatch"
        if cp.tree_size < signed:
            return cp.tree_size + 1, "checkpoint_replayed"
        report["checkpoint"] = {"tree_size": cp.tree_size, "root_hash": cp.root_hash.hex()}
        if cp.tree_size > head_seq:
            return head_seq + 1, "truncated"
        leaves = record_tree_leaves(await self.store.record_hashes(chain_id, cp.tree_size))
        if root_from_leaf_hashes(leaves) != cp.root_hash:
            # name the first record whose leaf disagrees with what the checkpoint committed to
            return await self._first_divergence(chain_id, cp.tree_size, leaves), "checkpoint_mismatch"
        return None

    async def _first_divergence(self, chain_id: str, size: int, leaves: list[bytes]) -> int:
        """The first seq not covered by any older checkpoint that still matches: the tamper lies at or after it.

        Without an off-box copy the exact record cannot be known (the attacker re-hashed it); the signed history
        bounds it from below.
        """
        good = 0
        for row in await self.store.checkpoints(chain_id):
            tree_size = int(row["tree_size"])
            if tree_size > size:
                break
            try:
                cp = open_checkpoint(row["note"], self.checkpointer.key_name, self.checkpointer.public_key)
            except CheckpointError:
                continue
            if root_from_leaf_hashes(leaves[: cp.tree_size]) == cp.root_hash:
                good = max(good, cp.tree_size)
            else:
                break
        return good + 1
