"""gRPC edge of masking: MaskingService.Mask for text and JSON. Findings carry types and spans, never values."""

from __future__ import annotations

import json
from typing import Any

import grpc

from coresdk.errors import CoreSDKError, InvalidArgument
from coresdk.masking.engine import MAX_INPUT, TOO_LARGE, Masker
from coresdk.v1 import masking_pb2, masking_pb2_grpc
from sidecar.grpc_errors import abort
from sidecar.metrics import SidecarMetrics


def _no_constants(name: str) -> Any:
    raise InvalidArgument("INVALID_JSON", f"JSON contains {name}")


class MaskingService(masking_pb2_grpc.MaskingServiceServicer):
    def __init__(self, masker: Masker, metrics: SidecarMetrics) -> None:
        self._masker = masker
        self._metrics = metrics

    async def Mask(  # noqa: N802
        self, request: masking_pb2.MaskRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> masking_pb2.MaskResponse:
        try:
            kind = request.WhichOneof("input")
            if kind is None:
                raise InvalidArgument("MASK_INPUT_MISSING", "give text or json")
            if kind == "text":
                masked, findings = self._masker.mask_text(request.text, request.policy)
                reply = masking_pb2.MaskResponse(text=masked)
            else:
                if len(request.json) > MAX_INPUT:
                    raise InvalidArgument(TOO_LARGE, f"input exceeds {MAX_INPUT} characters")
                try:
                    document = json.loads(request.json, parse_constant=_no_constants)
                except RecursionError:
                    raise InvalidArgument(TOO_LARGE, "JSON nested too deeply") from None
                except ValueError as exc:
                    if isinstance(exc, InvalidArgument):
                        raise
                    raise InvalidArgument("INVALID_JSON", "json is not valid JSON") from None
                value, findings = self._masker.mask_json(document, request.policy)
                reply = masking_pb2.MaskResponse(json=json.dumps(value, ensure_ascii=False))
        except CoreSDKError as err:
            self._metrics.requests.labels("Mask", err.reason).inc()
            await abort(context, err)
            raise
        reply.findings.extend(
            masking_pb2.Finding(
                entity_type=f.entity_type,
                start=f.start,
                end=f.end,
                confidence=f.confidence,
                json_path=f.json_path,
                operator=f.operator,
            )
            for f in findings
        )
        self._metrics.requests.labels("Mask", "ok").inc()
        return reply
