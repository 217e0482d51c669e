"""Helpers to read CoreSDK refusals the way a client would: status code + google.rpc.ErrorInfo reason."""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2, status_pb2


def error_reason(err: grpc.aio.AioRpcError | grpc.RpcError) -> str:
    metadata = err.trailing_metadata() or ()
    for key, value in metadata:
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    return info.reason
    return ""
