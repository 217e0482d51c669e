"""Verification of a hash chain from its stored canonical bytes. Names the first bad record and why."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

from coresdk.audit.record import GENESIS_HASH


@dataclass(frozen=True)
class StoredRecord:
    chain_id: str
    seq: int
    canonical: bytes
    record_hash: str


@dataclass(frozen=True)
class ChainFailure:
    chain_id: str
    seq: int
    reason: str  # hash_mismatch | gap | broken_link | malformed | checkpoint_mismatch | truncated


@dataclass(frozen=True)
class ChainResult:
    chain_id: str
    records_checked: int
    head_seq: int
    head_hash: str
    failure: ChainFailure | None


def verify_chain(
    chain_id: str, records: Iterable[StoredRecord], start_seq: int = 1, start_previous: str = GENESIS_HASH
) -> ChainResult:
    """Walk records in order; each must re-hash to its record_hash, sit at the next seq, and link to its predecessor."""
    expected_seq = start_seq
    previous = start_previous
    checked = 0
    for rec in records:
        failure = None
        if rec.seq != expected_seq:
            failure = "gap"
        elif hashlib.sha256(rec.canonical).hexdigest() != rec.record_hash:
            failure = "hash_mismatch"
        else:
            try:
                body = json.loads(rec.canonical)
            except ValueError:
                body = None
            if not isinstance(body, dict) or body.get("seq") != rec.seq or body.get("chain_id") != chain_id:
                failure = "malformed"
            elif body.get("previous_hash") != previous:
                failure = "broken_link"
        if failure is not None:
            bad = ChainFailure(chain_id, expected_seq if failure == "gap" else rec.seq, failure)
            return ChainResult(chain_id, checked, expected_seq - 1, previous, bad)
        checked += 1
        previous = rec.record_hash
        expected_seq += 1
    return ChainResult(chain_id, checked, expected_seq - 1, previous, None)
