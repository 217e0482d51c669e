"""One audit record per gateway request (actor, route, decision, status) in the gateway's own chain, appended to the
engine's fsynced journal (coresdk.audit.log: concurrent requests share one write and one fsync) and shipped to the
control plane with the gateway's own credential.

The record names the route template (`GET /v1/agent/tasks/{id}`), never the raw path, and the raw target goes into
metadata where the detectors mask it before hashing. For a refused request the record is written before the refusal
is sent; for a forwarded one, after the upstream answered and before its body is relayed, so the status is known.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from coresdk.audit.record import clip
from coresdk.engine import Engine
from coresdk.errors import CoreSDKError

log = logging.getLogger("coresdk.gateway.audit")
ACTION = "http.request"
MAX_TARGET = 2048


@dataclass
class RequestRecord:
    """What the gateway learned about one request while deciding it."""

    request_id: str
    method: str
    target: str  # raw path and query; masked before hashing
    ip: str
    actor: str = "anonymous"
    tenant_id: str = ""
    client_id: str = ""
    route: str = ""
    outcome: str = "deny"
    reason: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def fields(self, status: int, mask: Callable[[str], str] | None = None) -> dict[str, Any]:
        """mask: applied to the values a client chooses (target, client id); the rest are the gateway's own
        (request and decision ids, status, route), which hold no PII."""
        keep: Callable[[str], str] = mask or (lambda v: v)
        return {
            "actor": clip(self.actor),
            "action": ACTION,
            "resource": clip(f"{self.method} {self.route or '(unmatched)'}"),
            "outcome": self.outcome,
            "tenant_id": clip(self.tenant_id),
            "ip": clip(self.ip),
            "reason": clip(self.reason),
            "metadata": {
                "request_id": self.request_id,
                "status": status,
                "target": keep(clip(self.target, MAX_TARGET)),
                "client_id": keep(clip(self.client_id)),
                **self.extra,
            },
        }


class RequestAuditor:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def _mask(self, value: str) -> str:
        return self._engine.masker.mask_text(value)[0] if value else value

    async def append(self, record: RequestRecord, status: int) -> bool:
        """True once the record is durable in the gateway's journal; False (logged) otherwise."""
        try:
            fields = record.fields(status, self._mask)
            await self._engine.record([self._engine.audit_body(fields, metadata_masked=True)])
        except CoreSDKError as err:
            log.error("audit append failed request_id=%s reason=%s", record.request_id, err.reason)
            return False
        return True
