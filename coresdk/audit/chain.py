"""Verification of a hash chain from its stored canonical bytes. Names the first bad record and why."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

from coresdk.audit.record import GENESIS_HASH


@dataclass(frozen=True, slots=True)
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
    if end == start or chain_end < 0 or canonical[end : end + 1] not in (b",", b"}"):
        return None  # only a plain JSON integer is read in place; anything else is for the parser to judge
    if canonical[start] == 48 and end - start > 1:
        return None  # leading zeros are not JSON
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


def _literal(chain_id: str) -> bytes | None:
    """The chain id as it appears between the quotes of its canonical JSON string, closing quote included — when that
    is its plain UTF-8 (no escapes needed); None otherwise (the general rule handles such ids)."""
    if not chain_id.isprintable() or '"' in chain_id or "\\" in chain_id:
        return None
    try:
        return chain_id.encode() + b'"'
    except UnicodeEncodeError:
        return None


def _failure(rec: StoredRecord, chain_id: str, previous: str) -> str | None:
    """The general rule for one record whose seq and hash are already right: None if it sits where it claims."""
    position = _position(rec.canonical) or _position_slow(rec.canonical)
    if position is None or position[1] != rec.seq or position[0] != chain_id:
        return "malformed"
    if position[2] != previous:
        return "broken_link"
    return None


def verify_chain(
    chain_id: str, records: Iterable[StoredRecord], start_seq: int = 1, start_previous: str = GENESIS_HASH
) -> ChainResult:
    """Walk records in order; each must re-hash to its record_hash, sit at the next seq, and link to its predecessor.

    The common case is checked without parsing anything: the expected chain id, seq and previous hash are known, so
    each is compared in place at the position `_position` would read it from (same byte patterns, no slices, no
    digit loop). Anything that does not match exactly — a failure, leading zeros, odd values — goes through the
    general rule (`_failure`), which alone decides the failure reason.
    """
    expected_seq = start_seq
    previous = start_previous
    sha256 = hashlib.sha256
    rfind, find, startswith = bytes.rfind, bytes.find, bytes.startswith
    seq_key, prev_key, chain_key = _SEQ, _PREV, _CHAIN
    chain_tail = _literal(chain_id) or b""
    prev_at, seq_at, chain_at = len(_PREV), len(_SEQ), len(_CHAIN)
    previous_bytes = previous.encode("ascii", "replace")
    # The in-place comparison is exact only for a plain chain id and a 64-character previous hash.
    fast = bool(chain_tail) and len(previous_bytes) == 64
    failure = None
    for rec in records:
        canonical = rec.canonical
        record_hash = rec.record_hash
        if rec.seq != expected_seq:
            failure = "gap"
            break
        if sha256(canonical).hexdigest() != record_hash:
            failure = "hash_mismatch"
            break
        if not (
            fast
            and (s := rfind(canonical, seq_key)) >= 0
            and startswith(canonical, b"%d," % expected_seq, s + seq_at)
            and (p := rfind(canonical, prev_key)) >= 0
            and startswith(canonical, previous_bytes, p + prev_at)
            and (c := find(canonical, chain_key)) >= 0
            and startswith(canonical, chain_tail, c + chain_at)
        ):
            failure = _failure(rec, chain_id, previous)
            if failure is not None:
                break
        previous = record_hash
        previous_bytes = record_hash.encode()  # ASCII: it equals a hexdigest
        expected_seq += 1
    checked = expected_seq - start_seq
    if failure is not None:
        bad = ChainFailure(chain_id, expected_seq if failure == "gap" else rec.seq, failure)
        return ChainResult(chain_id, checked, expected_seq - 1, previous, bad)
    return ChainResult(chain_id, checked, expected_seq - 1, previous, None)
