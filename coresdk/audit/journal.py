"""The sidecar's append-only audit journal: framed, checksummed, fsynced, rotated into sealed segments.

Frame: length (u32) ‖ CRC-32 (u32) ‖ payload; payload: chain id length (u16) ‖ chain id ‖ seq (u64) ‖ record hash
(32 bytes) ‖ canonical record bytes. A frame is acknowledged only after the fsync that covers it returns. On open, a
torn or corrupt frame at the end of the newest segment (a write interrupted by a crash, never acknowledged) is cut
off; damage anywhere else is corruption and the journal refuses to open.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

_HEADER = struct.Struct(">II")
_SEQ = struct.Struct(">Q")
_CHAIN_LEN = struct.Struct(">H")
MAX_FRAME = 1024 * 1024


class JournalCorrupt(Exception):
    pass


class JournalInUse(Exception):
    """Another process holds this journal: two writers would each number the same chains from the same head and
    acknowledge forked records, so the second one must not start."""


LOCK_FILE = "journal.lock"


@dataclass(frozen=True)
class JournalEntry:
    chain_id: str
    seq: int
    record_hash: str
    canonical: bytes


def encode_frame(entry: JournalEntry) -> bytes:
    chain = entry.chain_id.encode()
    payload = b"".join(
        (_CHAIN_LEN.pack(len(chain)), chain, _SEQ.pack(entry.seq), bytes.fromhex(entry.record_hash), entry.canonical)
    )
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def _decode_payload(payload: bytes) -> JournalEntry:
    (n,) = _CHAIN_LEN.unpack_from(payload, 0)
    chain = payload[2 : 2 + n].decode()
    (seq,) = _SEQ.unpack_from(payload, 2 + n)
    offset = 2 + n + 8
    return JournalEntry(chain, seq, payload[offset : offset + 32].hex(), payload[offset + 32 :])


def read_segment(path: Path) -> tuple[list[JournalEntry], int, bool]:
    """(entries, bytes of valid frames, whether the file ends with a torn/corrupt frame)."""
    data = path.read_bytes()
    entries: list[JournalEntry] = []
    pos = 0
    while pos < len(data):
        if pos + _HEADER.size > len(data):
            return entries, pos, True
        length, crc = _HEADER.unpack_from(data, pos)
        end = pos + _HEADER.size + length
        if length > MAX_FRAME or end > len(data):
            return entries, pos, True
        payload = data[pos + _HEADER.size : end]
        if zlib.crc32(payload) != crc:
            return entries, pos, True
        try:
            entries.append(_decode_payload(payload))
        except (struct.error, UnicodeDecodeError, ValueError):
            return entries, pos, True
        pos = end
    return entries, pos, False


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Journal:
    def __init__(self, directory: Path, segment_bytes: int) -> None:
        self.directory = directory
        self._segment_bytes = segment_bytes
        self._fd: int | None = None
        self._lock_fd: int | None = None
        self._size = 0
        self._index = 0
        self.truncated_bytes = 0

    def segments(self) -> list[Path]:
        return sorted(self.directory.glob("segment-*.jnl"))

    def open(self) -> list[JournalEntry]:
        """Take the journal's lock, recover every acknowledged entry, cut a torn tail, and open the newest segment
        for appending. JournalInUse if another process holds the lock (released when that process ends, however)."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._lock()
        segments = self.segments()
        entries: list[JournalEntry] = []
        for i, path in enumerate(segments):
            found, valid, torn = read_segment(path)
            if torn and i != len(segments) - 1:
                raise JournalCorrupt(f"sealed segment {path.name} is damaged at byte {valid}")
            if torn:
                self.truncated_bytes = path.stat().st_size - valid
                with open(path, "r+b") as fh:
                    fh.truncate(valid)
                    fh.flush()
                    os.fsync(fh.fileno())
            entries.extend(found)
        if segments:
            self._index = int(segments[-1].stem.split("-")[1])
            self._open_segment(segments[-1])
        else:
            self._new_segment()
        return entries

    def _lock(self) -> None:
        """An exclusive flock on the directory's lock file, held until close() or the process's end."""
        lock_path = self.directory / LOCK_FILE
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise JournalInUse(
                f"the audit journal {self.directory} is in use by another process; each process needs its own"
                " journal directory (and chain)"
            ) from None
        except OSError:
            os.close(fd)
            raise
        self._lock_fd = fd

    def read_all(self) -> list[JournalEntry]:
        """Every entry on disk (for verification), without modifying anything."""
        out: list[JournalEntry] = []
        for path in self.segments():
            found, _, _ = read_segment(path)
            out.extend(found)
        return out

    def _open_segment(self, path: Path) -> None:
        path.chmod(0o600)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        self._size = path.stat().st_size

    def _new_segment(self) -> None:
        self._index += 1
        path = self.directory / f"segment-{self._index:08d}.jnl"
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o600)
        os.fsync(fd)
        _fsync_dir(self.directory)
        self._fd = fd
        self._size = 0

    def append(self, entries: list[JournalEntry]) -> None:
        """Write and fsync; on failure try to restore the previous end so the journal stays consistent, then raise."""
        assert self._fd is not None, "open() first"
        data = b"".join(encode_frame(e) for e in entries)
        try:
            written = os.write(self._fd, data)
            if written != len(data):
                raise OSError("short write to audit journal")
            os.fsync(self._fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._size)
                os.fsync(self._fd)
            raise
        self._size += len(data)
        if self._size >= self._segment_bytes:
            self._seal_current()

    def _seal_current(self) -> None:
        assert self._fd is not None
        os.close(self._fd)
        (self.directory / f"segment-{self._index:08d}.jnl").chmod(0o400)
        self._new_segment()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None
