"""The one place where typed CoreSDK errors become gRPC statuses with a google.rpc.ErrorInfo reason."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from coresdk.errors import Code, CoreSDKError

ERROR_DOMAIN = "coresdk.dev"

_GRPC_CODES: dict[Code, grpc.StatusCode] = {
    Code.INVALID_ARGUMENT: grpc.StatusCode.INVALID_ARGUMENT,
    Code.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    Code.PERMISSION_DENIED: grpc.StatusCode.PERMISSION_DENIED,
    Code.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    Code.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    Code.INTERNAL: grpc.StatusCode.INTERNAL,
}


def grpc_code(err: CoreSDKError) -> grpc.StatusCode:
    return _GRPC_CODES[err.code]


def status_details(err: CoreSDKError) -> bytes:
    """Serialized google.rpc.Status carrying ErrorInfo, as grpcio-status clients expect it."""
    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.ErrorInfo(reason=err.reason, domain=ERROR_DOMAIN))
    code = grpc_code(err)
    status = status_pb2.Status(code=code.value[0], message=err.message, details=[detail])
    return status.SerializeToString()


async def abort(context: grpc.aio.ServicerContext[Any, Any], err: CoreSDKError) -> None:
    """Abort the call with err's status, message and ErrorInfo reason. Never returns."""
    await context.abort(
        grpc_code(err),
        err.message,
        trailing_metadata=(("grpc-status-details-bin", status_details(err)),),
    )
