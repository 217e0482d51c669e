"""The audit record and its hash: SHA-256 over the RFC 8785 canonical JSON of the record without record_hash.

Input is validated before anything is hashed: strings are NFC-normalised, integers must lie within ±(2^53 − 1),
NaN and infinities are refused, metadata is a JSON object of bounded size and depth. The canonical bytes are what
is stored and shipped; verifiers re-hash those bytes and never re-canonicalise.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import os
import threading
import time
import unicodedata
from dataclasses import dataclass
from typing import Any

import rfc8785

from coresdk.audit import chain_id as chain_ids
from coresdk.audit.canonical import canonical_bytes
from coresdk.errors import InvalidArgument

GENESIS_HASH = "0" * 64
MAX_SAFE_INT = 2**53 - 1
MAX_STRING = 4096
MAX_METADATA_BYTES = 64 * 1024
MAX_DEPTH = 32
STRING_FIELDS = ("actor", "action", "resource", "outcome", "tenant_id", "ip", "session_id", "reason")
INVALID = "INVALID_RECORD"


@dataclass(frozen=True)
class SealedRecord:
    chain_id: str
    seq: int
    canonical: bytes
    record_hash: str
    previous_hash: str


def clip(value: str, limit: int = 256) -> str:
    """Cut a value that comes from outside (a token claim, a request target) to a bounded length before it goes into
    a record, so that one hostile value can never make a record — or the batch it travels in — invalid."""
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _text(value: str, what: str) -> str:
    if value.isascii():
        return value  # ASCII is valid UTF-8 and already NFC
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgument(INVALID, f"{what} is not valid UTF-8 (lone surrogate)") from None
    return unicodedata.normalize("NFC", value)


def _clean(value: Any, depth: int = 0) -> Any:
    if depth > MAX_DEPTH:
        raise InvalidArgument(INVALID, f"metadata nested deeper than {MAX_DEPTH}")
    if isinstance(value, str):
        return _text(value, "metadata")
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INT:
            raise InvalidArgument(INVALID, "integers must lie within ±(2^53 − 1); send larger numbers as strings")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidArgument(INVALID, "NaN and infinite numbers are not allowed")
        return value
    if isinstance(value, list):
        return [_clean(v, depth + 1) for v in value]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise InvalidArgument(INVALID, "metadata keys must be strings")
            out[_text(k, "metadata key")] = _clean(v, depth + 1)
        return out
    raise InvalidArgument(INVALID, f"unsupported metadata value of type {type(value).__name__}")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise InvalidArgument(INVALID, f"metadata repeats key {k!r}")
        out[k] = v
    return out


def _refuse_constant(name: str) -> Any:
    raise InvalidArgument(INVALID, f"metadata contains {name}")


# Built once: json.loads with hooks builds a new decoder on every call.
_DECODE = json.JSONDecoder(object_pairs_hook=_no_duplicate_keys, parse_constant=_refuse_constant).decode
_SIZE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def parse_metadata_json(text: str) -> dict[str, Any]:
    if not text:
        return {}
    if len(text) * 4 > MAX_METADATA_BYTES and len(text.encode("utf-8", "surrogatepass")) > MAX_METADATA_BYTES:
        raise InvalidArgument(INVALID, f"metadata exceeds {MAX_METADATA_BYTES} bytes")
    try:
        value = _DECODE(text)
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, InvalidArgument):
            raise
        raise InvalidArgument(INVALID, "metadata_json is not valid JSON") from None
    if not isinstance(value, dict):
        raise InvalidArgument(INVALID, "metadata must be a JSON object")
    return value


_RANDOM_BLOCK = 16 * 256
_random = bytearray()
_random_lock = threading.Lock()


def _forget_random() -> None:
    global _random_lock
    _random.clear()  # a forked child must never hand out the ids its parent will
    _random_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_random)


def new_record_id() -> str:
    """A random (version 4) UUID in its usual text form: the same 122 random bits uuid.uuid4() draws, formatted
    directly (less than half the cost of building a UUID object per record). The bytes come from os.urandom in
    blocks of 256 ids: one getrandom call per block instead of one per record."""
    with _random_lock:  # threads of an in-process client must never share an id's bytes
        if not _random:
            _random.extend(os.urandom(_RANDOM_BLOCK))
        raw = _random[-16:]
        del _random[-16:]
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_second_text: tuple[int, str] = (-1, "")


def _now_text() -> str:
    """The current UTC time in the record format; the date and time of day are formatted once per second."""
    global _second_text
    micros = time.time_ns() // 1000
    second, fraction = divmod(micros, 1_000_000)
    cached_second, text = _second_text
    if second != cached_second:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _second_text = (second, text)
    return f"{text}.{fraction:06d}Z"


def utc_timestamp(when: dt.datetime | None = None) -> str:
    if when is None:
        return _now_text()
    moment = when.astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def validate_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """Normalised record body (without chain position), or InvalidArgument."""
    body: dict[str, Any] = {}
    for name in STRING_FIELDS:
        value = fields.get(name, "")
        if not isinstance(value, str):
            raise InvalidArgument(INVALID, f"{name} must be a string")
        if len(value) > MAX_STRING:
            raise InvalidArgument(INVALID, f"{name} exceeds {MAX_STRING} characters")
        body[name] = value if value.isascii() else _text(value, name)  # ASCII: valid UTF-8, already NFC
    for required in ("actor", "action", "outcome"):
        if not body[required]:
            raise InvalidArgument(INVALID, f"{required} is required")
    metadata = fields.get("metadata", {})
    if not isinstance(metadata, dict):
        raise InvalidArgument(INVALID, "metadata must be a JSON object")
    body["metadata"] = _clean(metadata)
    # json.dumps (C) bounds the canonical size closely enough; the exact bytes are produced once, in seal().
    if len(_SIZE(body["metadata"])) > MAX_METADATA_BYTES:
        raise InvalidArgument(INVALID, f"metadata exceeds {MAX_METADATA_BYTES} bytes")
    body["id"] = str(fields.get("id") or new_record_id())
    if len(body["id"]) > 128:
        raise InvalidArgument(INVALID, "id exceeds 128 characters")
    body["timestamp"] = str(fields.get("timestamp") or utc_timestamp())
    return body


def seal(body: dict[str, Any], chain_id: str, seq: int, previous_hash: str) -> SealedRecord:
    """The sealed record; a chain id outside the grammar is never sealed (InvalidChainId), whoever calls."""
    chain_ids.check(chain_id)
    record = {**body, "chain_id": chain_id, "seq": seq, "previous_hash": previous_hash}
    try:
        canonical = canonical_bytes(record)
    except (rfc8785.CanonicalizationError, ValueError) as exc:
        raise InvalidArgument(INVALID, f"record cannot be canonicalised: {exc}") from None
    return SealedRecord(chain_id, seq, canonical, hashlib.sha256(canonical).hexdigest(), previous_hash)


def proto_fields(record: Any) -> dict[str, Any]:
    """The fields of an `AuditRecord` message as `validate_fields` takes them (metadata parsed, not yet masked):
    one reading for every face that receives records on the wire or in process."""
    fields: dict[str, Any] = {
        "id": record.id,
        "actor": record.actor,
        "action": record.action,
        "resource": record.resource,
        "outcome": record.outcome,
        "tenant_id": record.tenant_id,
        "ip": record.ip,
        "session_id": record.session_id,
        "reason": record.reason,
        "metadata": parse_metadata_json(record.metadata_json),
    }
    if record.HasField("timestamp"):
        fields["timestamp"] = utc_timestamp(record.timestamp.ToDatetime(tzinfo=dt.UTC))
    return fields
