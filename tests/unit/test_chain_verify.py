"""Chain verification reads link fields in place; it must decide exactly what a full JSON reading of the rule decides.

The reference here parses every record with json.loads and applies the chain rule literally (seq, chain_id and
previous_hash of the top-level object). Generated chains carry decoy keys (`seq`, `chain_id`, `previous_hash`
inside metadata, odd strings, long values) and are then tampered with in every way the rule distinguishes.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from coresdk.audit.chain import StoredRecord, verify_chain
from coresdk.audit.record import GENESIS_HASH, seal, validate_fields

_DECOYS = ("seq", "chain_id", "previous_hash", "record_hash", "a", "zz")
_text = st.text(st.characters(codec="utf-8"), max_size=12) | st.sampled_from(
    ['","seq":1,"', '"previous_hash":"' + "0" * 64 + '"', ',"chain_id":"other"', "\\", '"']
)
_scalar = _text | st.integers(-(2**53) + 1, 2**53 - 1) | st.booleans() | st.none()
_metadata = st.dictionaries(
    st.sampled_from(_DECOYS) | _text, st.recursive(_scalar, lambda kids: st.lists(kids, max_size=3), max_leaves=6)
)


def reference(chain_id: str, records: list[StoredRecord], start_seq: int = 1, start_prev: str = GENESIS_HASH) -> Any:
    expected, previous = start_seq, start_prev
    for rec in records:
        if rec.seq != expected:
            return ("gap", expected, expected - start_seq)
        if hashlib.sha256(rec.canonical).hexdigest() != rec.record_hash:
            return ("hash_mismatch", rec.seq, expected - start_seq)
        try:
            body = json.loads(rec.canonical)
        except ValueError:
            return ("malformed", rec.seq, expected - start_seq)
        if body.get("chain_id") != chain_id or body.get("seq") != rec.seq or not isinstance(body.get("seq"), int):
            return ("malformed", rec.seq, expected - start_seq)
        if body.get("previous_hash") != previous:
            return ("broken_link", rec.seq, expected - start_seq)
        previous = rec.record_hash
        expected += 1
    return (None, expected - 1, expected - start_seq)


def outcome(chain_id: str, records: list[StoredRecord]) -> Any:
    result = verify_chain(chain_id, records)
    if result.failure is None:
        return (None, result.head_seq, result.records_checked)
    return (result.failure.reason, result.failure.seq, result.records_checked)


def build(chain_id: str, metadatas: list[dict[str, Any]]) -> list[StoredRecord]:
    records, previous = [], GENESIS_HASH
    for i, metadata in enumerate(metadatas, start=1):
        body = validate_fields({"actor": "a", "action": "x", "outcome": "allow", "metadata": metadata})
        sealed = seal(body, chain_id, i, previous)
        previous = sealed.record_hash
        records.append(StoredRecord(chain_id, i, sealed.canonical, sealed.record_hash))
    return records


def rehashed(rec: StoredRecord, canonical: bytes, seq: int | None = None) -> StoredRecord:
    return StoredRecord(rec.chain_id, rec.seq if seq is None else seq, canonical, hashlib.sha256(canonical).hexdigest())


def rewrite(rec: StoredRecord, **changes: Any) -> StoredRecord:
    body = json.loads(rec.canonical)
    body.update(changes)
    raw = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()
    return rehashed(rec, raw)


_TAMPER = st.sampled_from(
    [
        "none",
        "flip_byte",
        "seq_in_body",
        "leading_zero_seq",
        "float_seq",
        "other_chain",
        "other_previous",
        "drop_record",
        "swap_records",
        "seq_last_key",
        "not_json",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    chain_id=st.sampled_from(["sidecar", "gw:a.b-c", "x"]),
    metadatas=st.lists(_metadata, min_size=1, max_size=5),
    tamper=_TAMPER,
    where=st.integers(0, 4),
)
def test_in_place_reading_decides_like_a_full_parse(
    chain_id: str, metadatas: list[dict[str, Any]], tamper: str, where: int
) -> None:
    records = build(chain_id, metadatas)
    i = where % len(records)
    rec = records[i]
    if tamper == "flip_byte":
        records[i] = StoredRecord(rec.chain_id, rec.seq, rec.canonical[:-2] + b"X}", rec.record_hash)
    elif tamper == "seq_in_body":
        records[i] = rewrite(rec, seq=rec.seq + 1)
    elif tamper == "leading_zero_seq":
        records[i] = rehashed(rec, rec.canonical.replace(b',"seq":%d,' % rec.seq, b',"seq":0%d,' % rec.seq))
    elif tamper == "float_seq":
        records[i] = rehashed(rec, rec.canonical.replace(b',"seq":%d,' % rec.seq, b',"seq":%d.5,' % rec.seq))
    elif tamper == "other_chain":
        records[i] = rewrite(rec, chain_id=chain_id + "2")
    elif tamper == "other_previous":
        records[i] = rewrite(rec, previous_hash="f" * 64)
    elif tamper == "drop_record" and len(records) > 1:
        del records[i]
    elif tamper == "swap_records" and len(records) > 1:
        j = (i + 1) % len(records)
        records[i], records[j] = records[j], records[i]
    elif tamper == "seq_last_key":
        body = json.loads(rec.canonical)
        seq = body.pop("seq")
        raw = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()
        records[i] = rehashed(rec, raw[:-1] + b',"seq":%d}' % seq)
    elif tamper == "not_json":
        records[i] = rehashed(rec, b"not json")
    assert outcome(chain_id, records) == reference(chain_id, records)


def test_a_chain_continues_from_a_checkpoint() -> None:
    records = build("sidecar", [{"n": n} for n in range(6)])
    result = verify_chain("sidecar", records[3:], start_seq=4, start_previous=records[2].record_hash)
    assert result.failure is None and result.records_checked == 3 and result.head_hash == records[-1].record_hash
    wrong = verify_chain("sidecar", records[3:], start_seq=4, start_previous=records[1].record_hash)
    assert wrong.failure is not None and (wrong.failure.reason, wrong.failure.seq) == ("broken_link", 4)
    short = verify_chain("sidecar", records[3:], start_seq=4, start_previous="abc")
    assert short.failure is not None and short.failure.reason == "broken_link"
