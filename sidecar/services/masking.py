"""gRPC edge of masking: MaskingService.Mask for text and JSON. Findings carry types and spans, never values."""

from __future__ import annotations

import json
from typing import Any

import grpc

from coresdk.errors import CoreSDKError, InvalidArgument
from coresdk.masking.engine import MAX_INPUT, TOO_LARGE, Masker
from coresdk.metrics import EngineMetrics
from coresdk.v1 import masking_pb2, masking_pb2_grpc
from sidecar.grpc_errors import abort
from sidecar.secrets.encryption import Encryptor


def _no_constants(name: str) -> Any:
    raise InvalidArgument("INVALID_JSON", f"JSON contains {name}")


class _Deferred:
    """Collects values for the encrypt operator and leaves placeholders, encrypted afterwards (asynchronously)."""

    def __init__(self) -> None:
        self.values: list[tuple[str, str]] = []

    def __call__(self, entity_type: str, original: str) -> str:
        self.values.append((entity_type, original))
        return f"\x00cse{len(self.values) - 1}\x00"


class MaskingService(masking_pb2_grpc.MaskingServiceServicer):
    def __init__(self, masker: Masker, metrics: EngineMetrics, encryptor: Encryptor | None = None) -> None:
        self._masker = masker
        self._metrics = metrics
        self._encryptor = encryptor
        self._hmac_key = masker.hmac_key

    def _masker_for(self, policy: str) -> tuple[Masker, _Deferred | None]:
        if self._encryptor is None or policy != "encrypt":
            return self._masker, None
        deferred = _Deferred()
        return Masker(self._hmac_key, encrypt_operator=deferred), deferred

    async def _fill(self, text: str, deferred: _Deferred | None, json_mode: bool = False) -> str:
        if deferred is None or not deferred.values:
            return text
        assert self._encryptor is not None
        for i, (entity_type, original) in enumerate(deferred.values):
            ciphertext, _ = await self._encryptor.encrypt(original.encode(), f"masking/{entity_type}".encode())
            marker = f"\\u0000cse{i}\\u0000" if json_mode else f"\x00cse{i}\x00"
            text = text.replace(marker, ciphertext)
        return text

    async def Mask(  # noqa: N802
        self, request: masking_pb2.MaskRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> masking_pb2.MaskResponse:
        try:
            kind = request.WhichOneof("input")
            if kind is None:
                raise InvalidArgument("MASK_INPUT_MISSING", "give text or json")
            masker, deferred = self._masker_for(request.policy)
            if kind == "text":
                masked, findings = masker.mask_text(request.text, request.policy)
                reply = masking_pb2.MaskResponse(text=await self._fill(masked, deferred))
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
                value, findings = masker.mask_json(document, request.policy)
                text = json.dumps(value, ensure_ascii=False)
                reply = masking_pb2.MaskResponse(json=await self._fill(text, deferred, json_mode=True))
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
