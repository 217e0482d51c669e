"""Off-box audit sinks. Each receives records in chain order and then the checkpoints that cover them.

A sink that fails is retried with back-off from its own stored position; it never blocks ingest and never skips a
record. Three kinds, several at once:
- directory: `<chain>.jsonl` (O_APPEND, fsync) and `<chain>.checkpoint` / `<chain>.checkpoints` (signed notes);
- syslog over TCP (RFC 5424 messages, RFC 6587 octet-counting frames) with the chain fields as structured data;
  TCP syslog has no acknowledgements, so a collector that vanishes mid-write can lose what the kernel had buffered
  (use the directory or HEC sink, which acknowledge, for the copy you verify against);
- HTTP in the Splunk HEC JSON event format, batched.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import os
import socket
from pathlib import Path
from typing import Protocol

import aiohttp

from coresdk.audit.chain import StoredRecord

_SD_ID = "coresdk@32473"  # 32473: the private enterprise number reserved for documentation and examples


class Sink(Protocol):
    name: str

    async def deliver(self, chain_id: str, records: list[StoredRecord]) -> None: ...
    async def deliver_checkpoint(self, chain_id: str, note: str, tree_size: int) -> None: ...
    async def close(self) -> None: ...


def safe_name(chain_id: str) -> str:
    return base64.urlsafe_b64encode(chain_id.encode()).decode().rstrip("=") if "/" in chain_id else chain_id


def export_line(r: StoredRecord) -> str:
    return json.dumps(
        {"chain_id": r.chain_id, "seq": r.seq, "record_hash": r.record_hash, "canonical": r.canonical.decode()},
        separators=(",", ":"),
    )


class DirectorySink:
    name = "directory"

    def __init__(self, directory: Path) -> None:
        self._dir = directory

    def _append(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)

    async def deliver(self, chain_id: str, records: list[StoredRecord]) -> None:
        data = "".join(export_line(r) + "\n" for r in records).encode()
        await asyncio.to_thread(self._append, self._dir / f"{safe_name(chain_id)}.jsonl", data)

    def _write_checkpoint(self, chain_id: str, note: str) -> None:
        self._append(self._dir / f"{safe_name(chain_id)}.checkpoints", note.encode() + b"\n")
        latest = self._dir / f"{safe_name(chain_id)}.checkpoint"
        tmp = latest.with_suffix(".tmp")
        tmp.write_text(note)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, latest)

    async def deliver_checkpoint(self, chain_id: str, note: str, tree_size: int) -> None:
        await asyncio.to_thread(self._write_checkpoint, chain_id, note)

    async def close(self) -> None:
        return None


def _sd_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


class SyslogSink:
    name = "syslog"

    def __init__(self, host: str, port: int, app_name: str = "coresdk") -> None:
        self._host, self._port = host, port
        self._app = app_name
        self._hostname = socket.gethostname()[:255] or "-"
        self._writer: asyncio.StreamWriter | None = None
        self._reader: asyncio.StreamReader | None = None

    def _frame(self, msgid: str, sd: dict[str, str], message: str, when: str) -> bytes:
        params = " ".join(f'{k}="{_sd_escape(v)}"' for k, v in sd.items())
        # PRI 110 = facility 13 (log audit) * 8 + severity 6 (informational)
        line = f"<110>1 {when} {self._hostname} {self._app} - {msgid} [{_SD_ID} {params}] {message}".encode()
        return f"{len(line)} ".encode() + line

    async def _send(self, frames: list[bytes]) -> None:
        # Plain TCP has no application acknowledgement: a collector that closed its end (FIN already seen) must not
        # be written to, or the kernel accepts bytes that nobody will read.
        if self._reader is not None and self._reader.at_eof() and self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._writer is None or self._writer.is_closing():
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(self._host, self._port), timeout=5
            )
        writer = self._writer
        assert writer is not None
        try:
            writer.write(b"".join(frames))
            await asyncio.wait_for(writer.drain(), timeout=10)
        except (TimeoutError, OSError):
            writer.close()
            self._writer = None
            raise

    async def deliver(self, chain_id: str, records: list[StoredRecord]) -> None:
        frames = []
        for r in records:
            body = json.loads(r.canonical)
            sd = {
                "chain_id": chain_id,
                "seq": str(r.seq),
                "record_hash": r.record_hash,
                "previous_hash": str(body.get("previous_hash", "")),
            }
            frames.append(self._frame("audit", sd, r.canonical.decode(), str(body.get("timestamp", "-"))))
        await self._send(frames)

    async def deliver_checkpoint(self, chain_id: str, note: str, tree_size: int) -> None:
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        sd = {"chain_id": chain_id, "tree_size": str(tree_size)}
        await self._send([self._frame("checkpoint", sd, base64.b64encode(note.encode()).decode(), now)])

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


class HecSink:
    name = "hec"

    def __init__(self, url: str, token: str) -> None:
        self._url = url.rstrip("/") + "/services/collector/event"
        self._token = token
        self._session: aiohttp.ClientSession | None = None

    async def _post(self, events: list[dict[str, object]]) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
        body = "".join(json.dumps(e, separators=(",", ":")) for e in events)
        async with self._session.post(
            self._url, data=body, headers={"Authorization": f"Splunk {self._token}", "Content-Type": "application/json"}
        ) as resp:
            if resp.status != 200:
                raise OSError(f"HEC answered {resp.status}")

    async def deliver(self, chain_id: str, records: list[StoredRecord]) -> None:
        for start in range(0, len(records), 100):
            chunk = records[start : start + 100]
            await self._post(
                [
                    {
                        "time": _epoch(json.loads(r.canonical).get("timestamp")),
                        "host": socket.gethostname(),
                        "source": "coresdk",
                        "sourcetype": "coresdk:audit",
                        "event": json.loads(r.canonical),
                        "fields": {"chain_id": chain_id, "seq": r.seq, "record_hash": r.record_hash},
                    }
                    for r in chunk
                ]
            )

    async def deliver_checkpoint(self, chain_id: str, note: str, tree_size: int) -> None:
        await self._post(
            [
                {
                    "source": "coresdk",
                    "sourcetype": "coresdk:checkpoint",
                    "event": {"chain_id": chain_id, "tree_size": tree_size, "note": note},
                }
            ]
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _epoch(timestamp: object) -> float:
    try:
        return dt.datetime.fromisoformat(str(timestamp).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return dt.datetime.now(dt.UTC).timestamp()
