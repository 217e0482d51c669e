"""Ships journal entries to the control plane (POST /api/v1/audit/ingest): batched, at least once, in order.

The acknowledged position per chain is kept in `shipped.json` (written atomically), so shipping resumes where it
stopped after an outage of either side. The control plane is idempotent by (chain_id, seq).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from pathlib import Path

import aiohttp

from sidecar.audit.log import AuditLog

log = logging.getLogger("coresdk.sidecar.audit.shipper")
BATCH = 500


def load_position(path: Path) -> dict[str, int]:
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    return {str(k): int(v) for k, v in data.items()}


def save_position(path: Path, position: dict[str, int]) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as fh:
        json.dump(position, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Shipper:
    def __init__(self, audit: AuditLog, url: str, token: str, position_file: Path, position: dict[str, int]) -> None:
        self._audit = audit
        self._url = url
        self._token = token
        self._position_file = position_file
        self._position = position
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.rejected = 0
        audit.on_commit(self._wake.set)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="audit-shipper")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        backoff = 0.5
        async with aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=15), headers={"Authorization": f"Bearer {self._token}"}
        ) as session:
            while True:
                if not self._audit.unshipped:
                    self._wake.clear()
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout=5)
                    continue
                batch = list(self._audit.unshipped)[:BATCH]
                try:
                    async with session.post(
                        self._url,
                        json={
                            "records": [
                                {
                                    "chain_id": e.chain_id,
                                    "seq": e.seq,
                                    "record_hash": e.record_hash,
                                    "canonical": e.canonical.decode(),
                                }
                                for e in batch
                            ]
                        },
                    ) as resp:
                        body = await resp.text()
                        if resp.status != 200:
                            raise RuntimeError(f"HTTP {resp.status}: {body[:300]}")
                except (TimeoutError, aiohttp.ClientError, OSError, RuntimeError) as exc:
                    if "HTTP 409" in str(exc):
                        self.rejected += 1
                        log.error("audit shipping refused by the control plane (history conflict): %s", exc)
                    else:
                        log.warning("audit shipping failed, will retry: %s", exc)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 30.0)
                    continue
                backoff = 0.5
                for e in batch:
                    self._audit.unshipped.popleft()
                    self._position[e.chain_id] = max(self._position.get(e.chain_id, 0), e.seq)
                await asyncio.to_thread(save_position, self._position_file, dict(self._position))
