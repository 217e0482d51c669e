"""Record building on the hot path: the shortcuts (ASCII text, the current time, hoisted JSON codecs) must give what
the general code gives."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coresdk.audit.record import (
    MAX_METADATA_BYTES,
    new_record_id,
    parse_metadata_json,
    utc_timestamp,
    validate_fields,
)
from coresdk.errors import InvalidArgument


def test_the_current_time_has_the_record_format() -> None:
    stamp = utc_timestamp()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", stamp)
    parsed = dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
    assert abs((dt.datetime.now(dt.UTC) - parsed).total_seconds()) < 60
    assert utc_timestamp(parsed) == stamp


@given(st.text(st.characters(codec="utf-8"), max_size=20))
def test_string_fields_are_nfc_whatever_the_path(text: str) -> None:
    body = validate_fields({"actor": "a" + text, "action": "x", "outcome": "o", "reason": text})
    assert body["reason"] == unicodedata.normalize("NFC", text)


def test_metadata_rules_hold_with_the_hoisted_decoder() -> None:
    with pytest.raises(InvalidArgument, match="repeats key"):
        parse_metadata_json('{"a": 1, "a": 2}')
    with pytest.raises(InvalidArgument, match="NaN"):
        parse_metadata_json('{"a": NaN}')
    with pytest.raises(InvalidArgument, match="not valid JSON"):
        parse_metadata_json('{"a": ')
    with pytest.raises(InvalidArgument, match="exceeds"):
        parse_metadata_json('{"a": "' + "é" * (MAX_METADATA_BYTES // 2) + '"}')
    assert parse_metadata_json('{"a": "' + "é" * (MAX_METADATA_BYTES // 8) + '"}')["a"][0] == "é"
    with pytest.raises(InvalidArgument, match="lone surrogate"):
        validate_fields({"actor": "a", "action": "x", "outcome": "o", "reason": "\ud800"})


def test_record_ids_are_random_version_4_uuids() -> None:
    ids = {new_record_id() for _ in range(2000)}
    assert len(ids) == 2000
    for value in list(ids)[:200]:
        parsed = uuid.UUID(value)
        assert str(parsed) == value and parsed.version == 4 and parsed.variant == uuid.RFC_4122
    assert validate_fields({"actor": "a", "action": "x", "outcome": "o"})["id"] not in ids
