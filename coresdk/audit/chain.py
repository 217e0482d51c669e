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


_PREV = b'"previous_hash":"'
_SEQ = b',"seq":'
_CHAIN = b'"chain_id":"'


def _position(canonical: bytes) -> tuple[str, int, str] | None:
    """(chain_id, seq, previous_hash) read straight from RFC 8785 bytes.

    Keys are sorted, so the top-level chain_id precedes metadata (its first occurrence is top-level) and
    previous_hash and seq follow it with only scalar fields after them (their last occurrences are top-level).
    Inside strings every quote is escaped, so these byte patterns cannot come from a string value.
    """
    p = canonical.rfind(_PREV)
    s = canonical.rfind(_SEQ)
    c = canonical.find(_CHAIN)
    if p < 0 or s < 0 or c < 0:
        return None
    start = s + len(_SEQ)
    end = start
    while end < len(canonical) and 48 <= canonical[end] <= 57:
        end += 1
    chain_end = canonical.find(b'"', c + len(_CHAIN))
    if end == start or chain_end < 0:
        return None
    previous = canonical[p + len(_PREV) : p + len(_PREV) + 64].decode("ascii", "replace")
    return canonical[c + len(_CHAIN) : chain_end].decode("utf-8", "replace"), int(canonical[start:end]), previous


def _position_slow(canonical: bytes) -> tuple[str, int, str] | None:
    try:
        body = json.loads(canonical)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    chain, seq, prev = body.get("chain_id"), body.get("seq"), body.get("previous_hash")
    if not isinstance(chain, str) or not isinstance(seq, int) or not isinstance(prev, str):
        return None
    return chain, seq, prev


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
            position = _position(rec.canonical) or _position_slow(rec.canonical)
            if position is None or position[1] != rec.seq or position[0] != chain_id:
                failure = "malformed"
            elif position[2] != previous:
                failure = "broken_link"
        if failure is not None:
            bad = ChainFailure(chain_id, expected_seq if failure == "gap" else rec.seq, failure)
            return ChainResult(chain_id, checked, expected_seq - 1, previous, bad)
        checked += 1
        previous = rec.record_hash
        expected_seq += 1
    return ChainResult(chain_id, checked, expected_seq - 1, previous, None)
