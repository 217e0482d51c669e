"""gRPC edge of token validation: AuthService.Authenticate, its streaming variant and the batch.

Answers leave as bytes: a verified token carries its Principal serialised once (coresdk.auth.cache), and the
unary, stream and batch replies are framed around those bytes instead of being rebuilt as messages per call. The
stream and the batch share one per-token path (`_result`); sidecar.wire passes bytes through unserialised.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc

from coresdk import reasons
from coresdk.auth.cache import CachedPrincipal
from coresdk.auth.validator import TokenValidator
from coresdk.errors import CoreSDKError, InvalidArgument
from coresdk.metrics import EngineMetrics
from coresdk.v1 import auth_pb2, auth_pb2_grpc, common_pb2
from sidecar.grpc_errors import abort

log = logging.getLogger("coresdk.sidecar.auth")
MAX_BATCH = 1000
INVALID_BATCH_SIZE = reasons.INVALID_BATCH_SIZE
_READ_AHEAD = 64

# Protobuf tags of the length-delimited fields we frame by hand (field number << 3 | wire type 2).
_REQUEST_ID = b"\x0a"  # AuthenticateResult.request_id = 1
_PRINCIPAL = b"\x12"  # AuthenticateResult.principal = 2
_RESULTS = b"\x0a"  # AuthenticateBatchResponse.results = 1


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    return tag + _varint(len(payload)) + payload


class AuthService(auth_pb2_grpc.AuthServiceServicer):
    def __init__(self, validator: TokenValidator, metrics: EngineMetrics) -> None:
        self._validator = validator
        self._metrics = metrics
        # Labelled children resolved once; a refusal reason is looked up when it happens.
        self._requests_ok = metrics.requests.labels("Authenticate", "ok")
        self._latency = metrics.latency.labels("Authenticate")
        self._per_token = {
            method: (metrics.requests.labels(method, "ok"), metrics.latency.labels(method))
            for method in ("AuthenticateStream", "AuthenticateBatch")
        }

    async def Authenticate(  # noqa: N802 - gRPC method name
        self, request: auth_pb2.AuthenticateRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> bytes:
        started = time.perf_counter()
        try:
            verified = await self._validator.verify(request.token, request.audience)
        except CoreSDKError as err:
            self._metrics.requests.labels("Authenticate", err.reason).inc()
            self._latency.observe(time.perf_counter() - started)
            log.info("authenticate refused reason=%s", err.reason)
            await abort(context, err)
            raise  # unreachable: abort raises
        self._requests_ok.inc()
        self._latency.observe(time.perf_counter() - started)
        return verified.wire  # a serialised Principal

    async def _result(self, request: auth_pb2.AuthenticateRequest, method: str) -> bytes:
        """One serialised AuthenticateResult: the principal's cached bytes, or the refusal as an Error."""
        _, latency = self._per_token[method]
        started = time.perf_counter()
        try:
            verified: CachedPrincipal | CoreSDKError = await self._validator.verify(request.token, request.audience)
        except CoreSDKError as err:
            verified = err
        latency.observe(time.perf_counter() - started)
        return self._framed(request.request_id, verified, method)

    def _framed(self, request_id: str, verified: CachedPrincipal | CoreSDKError, method: str) -> bytes:
        if isinstance(verified, CoreSDKError):
            self._metrics.requests.labels(method, verified.reason).inc()
            return auth_pb2.AuthenticateResult(
                request_id=request_id,
                error=common_pb2.Error(code=verified.code.value, reason=verified.reason, message=verified.message),
            ).SerializeToString()
        self._per_token[method][0].inc()
        head = _field(_REQUEST_ID, request_id.encode()) if request_id else b""
        return head + _field(_PRINCIPAL, verified.wire)

    async def AuthenticateStream(  # noqa: N802 - gRPC method name
        self, request_iterator: AsyncIterator[auth_pb2.AuthenticateRequest], context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[bytes]:
        # Reading runs in its own task, a bounded queue ahead of the answers, so the next request is already being
        # received while an answer is being sent (one read and one write in flight instead of one or the other).
        queue: asyncio.Queue[auth_pb2.AuthenticateRequest | None] = asyncio.Queue(maxsize=_READ_AHEAD)

        async def read_ahead() -> None:
            try:
                async for request in request_iterator:
                    await queue.put(request)
            finally:
                await queue.put(None)

        reader = asyncio.create_task(read_ahead())
        try:
            while (request := await queue.get()) is not None:
                yield await self._result(request, "AuthenticateStream")
            await reader  # a failed read ends the stream with its error
        finally:
            reader.cancel()

    async def AuthenticateBatch(  # noqa: N802 - gRPC method name
        self, request: auth_pb2.AuthenticateBatchRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> bytes:
        if not 1 <= len(request.requests) <= MAX_BATCH:
            err = InvalidArgument(INVALID_BATCH_SIZE, f"a batch holds 1 to {MAX_BATCH} tokens")
            self._metrics.requests.labels("AuthenticateBatch", err.reason).inc()
            await abort(context, err)
        requests = request.requests
        latency = self._per_token["AuthenticateBatch"][1]
        started = time.perf_counter()
        answers = await self._validator.verify_many([(r.token, r.audience) for r in requests])
        per_token = (time.perf_counter() - started) / len(requests)
        for _ in requests:  # one observation per token, as the stream reports it
            latency.observe(per_token)
        results = [self._framed(r.request_id, a, "AuthenticateBatch") for r, a in zip(requests, answers, strict=True)]
        return b"".join([_field(_RESULTS, r) for r in results])  # a serialised AuthenticateBatchResponse
