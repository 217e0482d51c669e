"""Typed errors shared by every service.

Domain code raises these; each edge (gRPC servicer, HTTP handler) maps them to a wire status exactly once.
The `reason` is a stable machine-readable string (google.rpc.ErrorInfo.reason); `message` is for humans and
must never contain token contents or secret values.
"""

from __future__ import annotations

import enum


class Code(enum.Enum):
    """Transport-neutral status; names match gRPC status codes so the edge mapping is mechanical."""

    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    NOT_FOUND = "NOT_FOUND"
    UNAVAILABLE = "UNAVAILABLE"
    INTERNAL = "INTERNAL"


class CoreSDKError(Exception):
    """Base of every refusal that crosses a service edge."""

    code: Code = Code.INTERNAL

    def __init__(self, reason: str, message: str = "") -> None:
        super().__init__(message or reason)
        self.reason = reason
        self.message = message or reason.replace("_", " ").lower()


class InvalidArgument(CoreSDKError):
    code = Code.INVALID_ARGUMENT


class Unauthenticated(CoreSDKError):
    code = Code.UNAUTHENTICATED


class PermissionDenied(CoreSDKError):
    code = Code.PERMISSION_DENIED


class NotFound(CoreSDKError):
    code = Code.NOT_FOUND


class Unavailable(CoreSDKError):
    code = Code.UNAVAILABLE


class ConfigError(Exception):
    """Start-up configuration is unusable; the message names the offending variable."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable
        self.problem = problem
