"""Client-side helpers for calling the sidecar: read the machine-readable reason of a refusal."""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2, status_pb2


def error_reason(err: grpc.RpcError) -> str:
    """The google.rpc.ErrorInfo reason (e.g. "TOKEN_EXPIRED") of a failed call, or "" when it carries none."""
    trailing = err.trailing_metadata() if hasattr(err, "trailing_metadata") else None
    for key, value in trailing or ():
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            for detail in status_pb2.Status.FromString(value).details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info):
                    return str(info.reason)
    return ""
