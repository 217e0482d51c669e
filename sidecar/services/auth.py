"""gRPC edge of token validation: AuthService.Authenticate, its streaming variant and the batch.

Answers leave as bytes: a verified token carries its Principal serialised once (coresdk.auth.cache), and the
unary, stream and batch replies are framed around those bytes instead of being rebuilt as messages per call. The
stream and the batch share one path (`TokenValidator.verify_many`, then `_framed`); sidecar.wire passes bytes
through unserialised.
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
from coresdk.auth.principal_wire import length_delimited
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

    def _count(self, method: str, answers: list[CachedPrincipal | CoreSDKError]) -> None:
        """Per-token results into the request counter: the ok ones in one increment, each refusal by its reason."""
        ok = 0
        for answer in answers:
            if isinstance(answer, CoreSDKError):
                self._metrics.requests.labels(method, answer.reason).inc()
            else:
                ok += 1
        if ok:
            self._per_token[method][0].inc(ok)

    @staticmethod
    def _framed(request_id: str, verified: CachedPrincipal | CoreSDKError) -> bytes:
        """One serialised AuthenticateResult: the principal's cached bytes, or the refusal as an Error."""
        if isinstance(verified, CoreSDKError):
            return auth_pb2.AuthenticateResult(
                request_id=request_id,
                error=common_pb2.Error(code=verified.code.value, reason=verified.reason, message=verified.message),
            ).SerializeToString()
        head = length_delimited(_REQUEST_ID, request_id.encode()) if request_id else b""
        return head + length_delimited(_PRINCIPAL, verified.wire)

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
        latency = self._per_token["AuthenticateStream"][1]
        try:
            ended = False
            while not ended:
                # Whatever has arrived is judged together (verify_many: with workers, in parallel); a caller that
                # waits for each answer before sending the next still gets one answer per request at once.
                first = await queue.get()
                if first is None:
                    break
                arrived = [first]
                while len(arrived) < _READ_AHEAD and not queue.empty():
                    nxt = queue.get_nowait()
                    if nxt is None:
                        ended = True
                        break
                    arrived.append(nxt)
                started = time.perf_counter()
                answers = await self._validator.verify_many([(r.token, r.audience) for r in arrived])
                per_token = (time.perf_counter() - started) / len(arrived)
                self._count("AuthenticateStream", answers)
                for request, answer in zip(arrived, answers, strict=True):
                    latency.observe(per_token)  # a stream's latency is per message
                    yield self._framed(request.request_id, answer)
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
        started = time.perf_counter()
        answers = await self._validator.verify_many([(r.token, r.audience) for r in requests])
        self._count("AuthenticateBatch", answers)
        results = [self._framed(r.request_id, a) for r, a in zip(requests, answers, strict=True)]
        self._per_token["AuthenticateBatch"][1].observe(time.perf_counter() - started)  # a batch's latency is per call
        return b"".join([length_delimited(_RESULTS, r) for r in results])  # a serialised AuthenticateBatchResponse
