"""The hand-written AppendResponse bytes are exactly the generated message's serialisation, for any values."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from coresdk.v1 import audit_pb2
from sidecar.audit_wire import append_batch_response, append_response

_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=200)  # protobuf strings are valid UTF-8
_HASH = st.text("0123456789abcdef", min_size=0, max_size=64)
_RESPONSES = st.tuples(_TEXT, _TEXT, st.integers(min_value=0, max_value=2**64 - 1), _HASH, _HASH)


@given(_RESPONSES)
@settings(max_examples=500, deadline=None)
def test_an_append_response_is_what_protobuf_writes(values: tuple[str, str, int, str, str]) -> None:
    record_id, chain_id, seq, record_hash, previous_hash = values
    expected = audit_pb2.AppendResponse(
        id=record_id, chain_id=chain_id, seq=seq, record_hash=record_hash, previous_hash=previous_hash
    )
    ours = append_response(*values)
    assert ours == expected.SerializeToString()
    assert audit_pb2.AppendResponse.FromString(ours) == expected


@given(st.lists(_RESPONSES, max_size=40))
@settings(max_examples=200, deadline=None)
def test_a_batch_response_is_what_protobuf_writes(batch: list[tuple[str, str, int, str, str]]) -> None:
    expected = audit_pb2.AppendBatchResponse(
        results=[
            audit_pb2.AppendResponse(id=i, chain_id=c, seq=s, record_hash=h, previous_hash=p) for i, c, s, h, p in batch
        ]
    )
    assert append_batch_response([append_response(*values) for values in batch]) == expected.SerializeToString()
