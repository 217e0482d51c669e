"""Record building on the hot path: the shortcuts (ASCII text, the current time, hoisted JSON codecs) must give what
the general code gives."""

from __future__ import annotations

import datetime as dt
import os
import re
import threading
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


def test_record_ids_from_many_threads_never_repeat() -> None:
    """Ids are drawn from a buffer of random bytes: threads (an in-process client's) must never share one, across
    several refills of the buffer."""
    per_thread = 1500
    results: list[list[str]] = [[] for _ in range(8)]

    def draw(out: list[str]) -> None:
        for _ in range(per_thread):
            out.append(new_record_id())

    threads = [threading.Thread(target=draw, args=(out,)) for out in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [value for out in results for value in out]
    assert len(set(every)) == len(every) == 8 * per_thread
    assert all(uuid.UUID(value).version == 4 for value in every[::97])


def test_a_forked_child_draws_other_ids_than_its_parent() -> None:
    new_record_id()  # the parent's buffer holds unused bytes now
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, to the parent
        os.close(read)
        os.write(write, ",".join(new_record_id() for _ in range(50)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split(","))
    os.waitpid(pid, 0)
    parent = {new_record_id() for _ in range(50)}
    assert len(child) == 50 and not child & parent
