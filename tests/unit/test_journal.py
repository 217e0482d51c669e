"""Journal recovery rules: a torn tail is cut (never acknowledged), damage inside a sealed segment is refused."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from coresdk.audit.journal import Journal, JournalCorrupt, JournalEntry, JournalInUse


def entries(n: int, start: int = 1) -> list[JournalEntry]:
    out = []
    for seq in range(start, start + n):
        canonical = f'{{"seq":{seq}}}'.encode()
        out.append(JournalEntry("c", seq, hashlib.sha256(canonical).hexdigest(), canonical))
    return out


def test_roundtrip_and_torn_tail(tmp_path: Path) -> None:
    j = Journal(tmp_path, 1 << 20)
    assert j.open() == []
    j.append(entries(3))
    j.close()
    segment = sorted(tmp_path.glob("segment-*.jnl"))[-1]
    good_size = segment.stat().st_size
    with open(segment, "ab") as fh:  # a crash in the middle of the next write
        fh.write(b"\x00\x00\x01\x00garbage")
    j2 = Journal(tmp_path, 1 << 20)
    assert [e.seq for e in j2.open()] == [1, 2, 3]
    assert j2.truncated_bytes == 11
    assert segment.stat().st_size == good_size
    j2.append(entries(1, start=4))
    j2.close()
    assert [e.seq for e in Journal(tmp_path, 1 << 20).read_all()] == [1, 2, 3, 4]


def test_flipped_bit_in_the_tail_is_cut(tmp_path: Path) -> None:
    j = Journal(tmp_path, 1 << 20)
    j.open()
    j.append(entries(2))
    j.close()
    segment = sorted(tmp_path.glob("segment-*.jnl"))[-1]
    data = bytearray(segment.read_bytes())
    data[-1] ^= 0x01
    segment.write_bytes(bytes(data))
    assert [e.seq for e in Journal(tmp_path, 1 << 20).open()] == [1]


def test_damage_in_a_sealed_segment_refuses_to_open(tmp_path: Path) -> None:
    j = Journal(tmp_path, 64)  # tiny segments: every append seals one
    j.open()
    j.append(entries(2))
    j.append(entries(2, start=3))
    j.close()
    first = sorted(tmp_path.glob("segment-*.jnl"))[0]
    first.chmod(0o600)
    data = bytearray(first.read_bytes())
    data[12] ^= 0xFF
    first.write_bytes(bytes(data))
    with pytest.raises(JournalCorrupt):
        Journal(tmp_path, 64).open()


def test_a_journal_directory_belongs_to_one_writer(tmp_path: Path) -> None:
    """A second open of the same directory (another process, or another client in this one) is refused while the
    first holds it, and the directory is free again once the first closes; reading never needs the lock."""
    first = Journal(tmp_path, 1 << 20)
    first.open()
    first.append([JournalEntry("c", 1, "ab" * 32, b"{}")])
    second = Journal(tmp_path, 1 << 20)
    with pytest.raises(JournalInUse, match="in use by another process"):
        second.open()
    assert [e.seq for e in second.read_all()] == [1]
    first.close()
    assert [e.seq for e in second.open()] == [1]
    second.close()
