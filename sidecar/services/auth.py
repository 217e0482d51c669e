"""gRPC edge of token validation: AuthService.Authenticate and its streaming variant."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc

from coresdk.auth.validator import TokenValidator
from coresdk.errors import CoreSDKError
from coresdk.metrics import EngineMetrics
from coresdk.v1 import auth_pb2, auth_pb2_grpc, common_pb2
from sidecar.grpc_errors import abort

log = logging.getLogger("coresdk.sidecar.auth")


class AuthService(auth_pb2_grpc.AuthServiceServicer):
    def __init__(self, validator: TokenValidator, metrics: EngineMetrics) -> None:
        self._validator = validator
        self._metrics = metrics
        self._requests_ok = metrics.requests.labels("Authenticate", "ok")
        self._latency = metrics.latency.labels("Authenticate")

    async def Authenticate(  # noqa: N802 - gRPC method name
        self, request: auth_pb2.AuthenticateRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> common_pb2.Principal:
        started = time.perf_counter()
        try:
            principal = await self._validator.authenticate(request.token, request.audience)
        except CoreSDKError as err:
            self._metrics.requests.labels("Authenticate", err.reason).inc()
            self._latency.observe(time.perf_counter() - started)
            log.info("authenticate refused reason=%s", err.reason)
            await abort(context, err)
            raise  # unreachable: abort raises
        self._requests_ok.inc()
        self._latency.observe(time.perf_counter() - started)
        return principal

    async def AuthenticateStream(  # noqa: N802 - gRPC method name
        self, request_iterator: AsyncIterator[auth_pb2.AuthenticateRequest], context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[auth_pb2.AuthenticateResult]:
        ok = self._metrics.requests.labels("AuthenticateStream", "ok")
        latency = self._metrics.latency.labels("AuthenticateStream")
        async for request in request_iterator:
            started = time.perf_counter()
            try:
                principal = await self._validator.authenticate(request.token, request.audience)
            except CoreSDKError as err:
                self._metrics.requests.labels("AuthenticateStream", err.reason).inc()
                latency.observe(time.perf_counter() - started)
                yield auth_pb2.AuthenticateResult(
                    request_id=request.request_id,
                    error=common_pb2.Error(code=err.code.value, reason=err.reason, message=err.message),
                )
                continue
            ok.inc()
            latency.observe(time.perf_counter() - started)
            yield auth_pb2.AuthenticateResult(request_id=request.request_id, principal=principal)
