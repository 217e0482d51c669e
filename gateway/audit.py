"""One audit record per gateway request (actor, route, decision, status), appended through the sidecar's
AuditService, which masks PII in the metadata before hashing and acknowledges only after fsync.

The record names the route template (`GET /v1/agent/tasks/{id}`), never the raw path, and the raw target goes
into metadata where the sidecar's detectors mask it. For a refused request the record is written before the refusal
is sent; for a forwarded one, after the upstream answered and before its body is relayed, so the status is known.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any

import grpc

from coresdk.audit.record import clip
from coresdk.v1 import audit_pb2, audit_pb2_grpc

log = logging.getLogger("coresdk.gateway.audit")
ACTION = "http.request"


@dataclass
class RequestRecord:
    """What the gateway learned about one request while deciding it."""

    request_id: str
    method: str
    target: str  # raw path and query; masked by the sidecar
    ip: str
    actor: str = "anonymous"
    tenant_id: str = ""
    client_id: str = ""
    route: str = ""
    outcome: str = "deny"
    reason: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_proto(self, chain_id: str, status: int) -> audit_pb2.AuditRecord:
        return audit_pb2.AuditRecord(
            chain_id=chain_id,
            actor=clip(self.actor),
            action=ACTION,
            resource=clip(f"{self.method} {self.route or '(unmatched)'}"),
            outcome=self.outcome,
            tenant_id=clip(self.tenant_id),
            ip=self.ip,
            reason=clip(self.reason),
            metadata_json=json.dumps(
                {
                    "request_id": self.request_id,
                    "status": status,
                    "target": clip(self.target, MAX_TARGET),
                    "client_id": clip(self.client_id),
                    **self.extra,
                }
            ),
        )


MAX_TARGET = 2048


class RequestAuditor:
    """Group commit on the gateway side: records of concurrent requests travel in one AppendBatch, and each request
    waits only for the acknowledgement (fsync in the sidecar) that covers its own record."""

    MAX_BATCH = 500

    def __init__(self, channel: grpc.aio.Channel, chain_id: str, timeout_seconds: float = 3.0) -> None:
        self._stub = audit_pb2_grpc.AuditServiceStub(channel)  # type: ignore[no-untyped-call]
        self._chain = chain_id
        self._timeout = timeout_seconds
        self._pending: list[tuple[audit_pb2.AuditRecord, asyncio.Future[bool]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def append(self, record: RequestRecord, status: int) -> bool:
        """True once the record is durable in the sidecar's journal; False (logged) otherwise."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending.append((record.to_proto(self._chain, status), future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        return await future

    async def _write(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[: self.MAX_BATCH], self._pending[self.MAX_BATCH :]
            try:
                await self._stub.AppendBatch(
                    audit_pb2.AppendBatchRequest(records=[r for r, _ in batch]), timeout=self._timeout
                )
                ok = True
            except grpc.aio.AioRpcError as err:
                log.error("audit append failed records=%d code=%s", len(batch), err.code().name)
                ok = False
            for _, future in batch:
                if not future.done():
                    future.set_result(ok)
