"""gRPC edge of the audit journal: AuditService.Append, AppendBatch and Verify."""

from __future__ import annotations

import time
from typing import Any

import grpc

from coresdk.audit import chain_id as chain_ids
from coresdk.audit.chain import StoredRecord, verify_chain
from coresdk.audit.log import AuditLog
from coresdk.audit.record import (
    INVALID,
    SealedRecord,
    proto_fields,
    validate_fields,
)
from coresdk.errors import CoreSDKError, InvalidArgument
from coresdk.masking.engine import Masker
from coresdk.masking.fields import mask_fields
from coresdk.metrics import EngineMetrics
from coresdk.v1 import audit_pb2, audit_pb2_grpc
from sidecar.audit_wire import append_batch_response, append_response
from sidecar.grpc_errors import abort

MAX_BATCH = 1000


def _chain_id(value: str) -> str:
    """A chain id from a caller, or INVALID_ARGUMENT (reason INVALID_RECORD) saying what the grammar is."""
    try:
        return chain_ids.check(value)
    except chain_ids.InvalidChainId as exc:
        raise InvalidArgument(INVALID, str(exc)) from None


class AuditService(audit_pb2_grpc.AuditServiceServicer):
    def __init__(
        self, audit: AuditLog, default_chain: str, metrics: EngineMetrics, masker: Masker | None = None
    ) -> None:
        self._audit = audit
        self._masker = masker
        self._default_chain = default_chain
        self._metrics = metrics
        # Resolved once: a labelled child per call is a lock and a dict lookup the hot path does not need.
        self._append_ok = metrics.requests.labels("AuditAppend", "ok")
        self._append_latency = metrics.latency.labels("AuditAppend")
        self._batch_ok = metrics.requests.labels("AuditAppendBatch", "ok")

    def _body(self, record: audit_pb2.AuditRecord) -> tuple[str, dict[str, Any]]:
        chain_id = _chain_id(record.chain_id or self._default_chain)
        fields = proto_fields(record)
        fields["metadata"], _ = mask_fields(fields["metadata"])
        body = validate_fields(fields)
        if self._masker is not None:  # detectors too, so a card number in a free-text note is masked before hashing
            body["metadata"], _ = self._masker.mask_json(body["metadata"])
        return chain_id, body

    @staticmethod
    def _reply(body: dict[str, Any], sealed: SealedRecord) -> bytes:
        """A serialised AppendResponse from the body that was sealed (its id), never by parsing the sealed bytes."""
        return append_response(body["id"], sealed.chain_id, sealed.seq, sealed.record_hash, sealed.previous_hash)

    async def Append(  # noqa: N802
        self, request: audit_pb2.AppendRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> bytes:
        started = time.perf_counter()
        try:
            item = self._body(request.record)
            (sealed,) = await self._audit.append([item])
        except CoreSDKError as err:
            self._metrics.requests.labels("AuditAppend", err.reason).inc()
            await abort(context, err)
            raise
        self._append_ok.inc()
        self._append_latency.observe(time.perf_counter() - started)
        return self._reply(item[1], sealed)

    async def AppendBatch(  # noqa: N802
        self, request: audit_pb2.AppendBatchRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> bytes:
        """Every record validated before any is written; the answer is a serialised AppendBatchResponse."""
        try:
            if not request.records or len(request.records) > MAX_BATCH:
                raise InvalidArgument(INVALID, f"a batch holds 1 to {MAX_BATCH} records")
            bodies = [self._body(r) for r in request.records]  # all validated before any is written
            sealed = await self._audit.append(bodies)
        except CoreSDKError as err:
            self._metrics.requests.labels("AuditAppendBatch", err.reason).inc()
            await abort(context, err)
            raise
        self._batch_ok.inc()
        return append_batch_response([self._reply(body, s) for (_, body), s in zip(bodies, sealed, strict=True)])

    async def Verify(  # noqa: N802
        self, request: audit_pb2.VerifyRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> audit_pb2.VerifyResponse:
        if request.chain_id:
            try:
                _chain_id(request.chain_id)
            except CoreSDKError as err:
                self._metrics.requests.labels("AuditVerify", err.reason).inc()
                await abort(context, err)
                raise
        entries = await self._audit.read_all()
        chains: dict[str, list[StoredRecord]] = {}
        for e in entries:
            chains.setdefault(e.chain_id, []).append(StoredRecord(e.chain_id, e.seq, e.canonical, e.record_hash))
        checked = 0
        head = ""
        for chain_id in sorted(chains):
            if request.chain_id and chain_id != request.chain_id:
                continue
            result = verify_chain(chain_id, chains[chain_id])
            checked += result.records_checked
            head = result.head_hash
            if result.failure is not None:
                return audit_pb2.VerifyResponse(
                    chain_valid=False,
                    records_checked=checked,
                    first_bad_chain_id=chain_id,
                    first_bad_seq=result.failure.seq,
                    failure=result.failure.reason,
                )
        return audit_pb2.VerifyResponse(chain_valid=True, records_checked=checked, head_hash=head)
