"""Offline verification of an exported chain against a checkpoint kept elsewhere — no server involved.

Catches what an attacker with full control of the server cannot hide: a truncated tail (the checkpoint commits to
more records than the export holds) and a rewritten, re-hashed chain (the Merkle root differs).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from coresdk.audit import chain_id as chain_ids
from coresdk.audit.chain import StoredRecord, verify_chain
from coresdk.audit.checkpoint import CheckpointError, open_checkpoint, parse_origin, parse_verifier_key
from coresdk.audit.merkle import record_tree_leaves, root_from_leaf_hashes


def verify_export(export: Path, checkpoint: Path, verifier_key: str) -> dict[str, Any]:
    name, public_key = parse_verifier_key(verifier_key)
    try:
        cp = open_checkpoint(checkpoint.read_text(), name, public_key)
        signed_chain, kind = parse_origin(cp.origin, name)
    except CheckpointError as exc:
        return {"valid": False, "reason": "checkpoint_invalid", "detail": str(exc)}
    if kind:
        return {"valid": False, "reason": "checkpoint_invalid", "detail": f"{cp.origin} is a {kind} seal"}
    records: list[StoredRecord] = []
    for number, line in enumerate(export.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            records.append(
                StoredRecord(
                    chain_ids.check(item["chain_id"]), int(item["seq"]), item["canonical"].encode(), item["record_hash"]
                )
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return {"valid": False, "reason": "malformed_export", "detail": f"line {number}"}
    exported = {r.chain_id for r in records}
    if len(exported) > 1:
        return {"valid": False, "reason": "malformed_export", "detail": "export holds several chains"}
    chain_id = next(iter(exported), signed_chain)
    if chain_id != signed_chain:
        return {"valid": False, "reason": "checkpoint_mismatch", "detail": f"checkpoint is for {cp.origin}"}
    result = verify_chain(chain_id, records)
    report: dict[str, Any] = {
        "chain_id": chain_id,
        "records": len(records),
        "checkpoint": {"origin": cp.origin, "tree_size": cp.tree_size, "root_hash": cp.root_hash.hex()},
    }
    if result.failure is not None:
        return {**report, "valid": False, "first_bad_seq": result.failure.seq, "reason": result.failure.reason}
    if cp.tree_size > len(records):
        return {**report, "valid": False, "first_bad_seq": len(records) + 1, "reason": "truncated"}
    leaves = record_tree_leaves([bytes.fromhex(r.record_hash) for r in records[: cp.tree_size]])
    if root_from_leaf_hashes(leaves) != cp.root_hash:
        return {**report, "valid": False, "reason": "rewritten"}
    return {**report, "valid": True}
