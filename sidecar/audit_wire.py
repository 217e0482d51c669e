"""AppendResponse and AppendBatchResponse written as protobuf bytes straight from the sealed records: a batch of 500
answers used to build 500 messages in Python only for grpcio to serialise them (sidecar.wire passes bytes through).
The bytes are exactly what SerializeToString gives (fields in number order, proto3 defaults left out); a test
compares the two on generated records."""

from __future__ import annotations

from coresdk.auth.principal_wire import length_delimited, varint

# Tags: field number << 3 | wire type (2: length-delimited, 0: varint).
_ID, _CHAIN_ID, _SEQ, _RECORD_HASH, _PREVIOUS_HASH = b"\x0a", b"\x12", b"\x18", b"\x22", b"\x2a"
_RESULTS = b"\x0a"  # AppendBatchResponse.results = 1


def _text(tag: bytes, value: str) -> bytes:
    return length_delimited(tag, value.encode()) if value else b""


def append_response(record_id: str, chain_id: str, seq: int, record_hash: str, previous_hash: str) -> bytes:
    """One serialised AppendResponse."""
    return b"".join(
        (
            _text(_ID, record_id),
            _text(_CHAIN_ID, chain_id),
            _SEQ + varint(seq) if seq else b"",
            _text(_RECORD_HASH, record_hash),
            _text(_PREVIOUS_HASH, previous_hash),
        )
    )


def append_batch_response(responses: list[bytes]) -> bytes:
    """A serialised AppendBatchResponse around serialised AppendResponses, in order."""
    return b"".join(length_delimited(_RESULTS, response) for response in responses)
