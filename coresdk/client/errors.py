"""Typed refusals of the sidecar, each carrying its stable reason and the HTTP status a web application answers.

A failed call becomes exactly one of these in `from_rpc_error` (and a denied decision in `denial`), so application
code catches `TokenExpired` or `ScopeMissing` instead of switching on gRPC codes. The HTTP status is a property of
the category (`HTTP_STATUS`, the one table), so every integration answers the same refusal the same way.
"""

from __future__ import annotations

import grpc

from coresdk import reasons
from coresdk.client.status import error_reason
from coresdk.errors import Code, CoreSDKError

SIDECAR_UNAVAILABLE = "SIDECAR_UNAVAILABLE"
AUDIT_UNAVAILABLE = "AUDIT_UNAVAILABLE"

HTTP_STATUS: dict[Code, int] = {
    Code.INVALID_ARGUMENT: 400,
    Code.UNAUTHENTICATED: 401,
    Code.PERMISSION_DENIED: 403,
    Code.NOT_FOUND: 404,
    Code.UNAVAILABLE: 503,
    Code.INTERNAL: 500,
}


class SidecarError(CoreSDKError):
    """Base of every refusal the SDK raises. `reason` is stable (switch on it); `message` is for humans."""

    default_reason = "INTERNAL"

    def __init__(self, reason: str = "", message: str = "") -> None:
        super().__init__(reason or self.default_reason, message)

    @property
    def http_status(self) -> int:
        return HTTP_STATUS[self.code]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(reason={self.reason!r}, http_status={self.http_status})"


class InvalidRequest(SidecarError):
    """The call itself was wrong (a bug in the caller or an oversized input): 400."""

    code = Code.INVALID_ARGUMENT
    default_reason = "INVALID_ARGUMENT"


class AuthenticationFailed(SidecarError):
    """No usable token: 401 with `WWW-Authenticate: Bearer ...`."""

    code = Code.UNAUTHENTICATED
    default_reason = "UNAUTHENTICATED"


class TokenMissing(AuthenticationFailed):
    default_reason = reasons.TOKEN_MISSING


class TokenExpired(AuthenticationFailed):
    default_reason = reasons.TOKEN_EXPIRED


class TokenRevoked(AuthenticationFailed):
    default_reason = reasons.TOKEN_REVOKED


class AudienceMismatch(AuthenticationFailed):
    default_reason = reasons.AUDIENCE_MISMATCH


class BadSignature(AuthenticationFailed):
    default_reason = reasons.BAD_SIGNATURE


class Forbidden(SidecarError):
    """Authenticated, but not allowed: a denied decision or a refused secret path. 403."""

    code = Code.PERMISSION_DENIED
    default_reason = "PERMISSION_DENIED"

    def __init__(self, reason: str = "", message: str = "", permission: str = "") -> None:
        super().__init__(reason, message)
        self.permission = permission


class ScopeMissing(Forbidden):
    default_reason = "SCOPE_MISSING"


class RoleInsufficient(Forbidden):
    default_reason = "ROLE_INSUFFICIENT"


class TenantMismatch(Forbidden):
    default_reason = "TENANT_MISMATCH"


class TenantRequired(Forbidden):
    """The token names no tenant: there is never a default one."""

    default_reason = "TENANT_REQUIRED"


class NotOwner(Forbidden):
    default_reason = "NOT_OWNER"


class SecretPathNotAllowed(Forbidden):
    default_reason = reasons.SECRET_PATH_NOT_ALLOWED


class NotFound(SidecarError):
    code = Code.NOT_FOUND
    default_reason = "NOT_FOUND"


class SecretNotFound(NotFound):
    default_reason = reasons.SECRET_NOT_FOUND


class Unavailable(SidecarError):
    """Something a decision needs cannot be had right now: 503 with Retry-After, and the request never proceeds."""

    code = Code.UNAVAILABLE
    default_reason = SIDECAR_UNAVAILABLE


class SidecarUnavailable(Unavailable):
    """The sidecar did not answer (down, unreachable, or past the deadline)."""

    default_reason = SIDECAR_UNAVAILABLE


class KeysUnavailable(Unavailable):
    default_reason = reasons.KEYS_UNAVAILABLE


class RevocationsUnavailable(Unavailable):
    default_reason = reasons.REVOCATIONS_UNAVAILABLE


class AuditUnavailable(Unavailable):
    """The audit record could not be made durable, so the answer it would describe is not given."""

    default_reason = AUDIT_UNAVAILABLE


class VaultUnavailable(Unavailable):
    default_reason = reasons.VAULT_UNAVAILABLE


class PolicyEngineUnavailable(Unavailable):
    default_reason = "POLICY_ENGINE_UNAVAILABLE"


class InternalError(SidecarError):
    code = Code.INTERNAL


_SPECIFIC: tuple[type[SidecarError], ...] = (
    TokenMissing,
    TokenExpired,
    TokenRevoked,
    AudienceMismatch,
    BadSignature,
    ScopeMissing,
    RoleInsufficient,
    TenantMismatch,
    TenantRequired,
    NotOwner,
    SecretPathNotAllowed,
    SecretNotFound,
    SidecarUnavailable,
    KeysUnavailable,
    RevocationsUnavailable,
    AuditUnavailable,
    VaultUnavailable,
    PolicyEngineUnavailable,
)
BY_REASON: dict[str, type[SidecarError]] = {cls.default_reason: cls for cls in _SPECIFIC}
# The sidecar reports these as INVALID_ARGUMENT, but to the HTTP client they are about its token or its rights.
_REFILED: dict[str, type[SidecarError]] = {reasons.TOKEN_TOO_LARGE: AuthenticationFailed}

_BY_CODE: dict[grpc.StatusCode, type[SidecarError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidRequest,
    grpc.StatusCode.UNAUTHENTICATED: AuthenticationFailed,
    grpc.StatusCode.PERMISSION_DENIED: Forbidden,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    # The deadline passed or the stream was cut: as far as the caller knows, the sidecar is not there.
    grpc.StatusCode.DEADLINE_EXCEEDED: SidecarUnavailable,
    grpc.StatusCode.CANCELLED: SidecarUnavailable,
}


def from_reason(reason: str, code: grpc.StatusCode, message: str = "") -> SidecarError:
    """The one mapping from a sidecar answer (gRPC code and ErrorInfo reason) to a typed exception."""
    cls = BY_REASON.get(reason) or _REFILED.get(reason) or _BY_CODE.get(code, InternalError)
    if cls is Unavailable and not reason:
        cls = SidecarUnavailable  # UNAVAILABLE without a reason comes from the transport, not from the sidecar
    return cls(reason, message)


def from_rpc_error(err: grpc.RpcError) -> SidecarError:
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    details = err.details() if hasattr(err, "details") else ""
    reason = error_reason(err)
    # A message from the sidecar never contains token content; a transport message may name addresses only.
    return from_reason(reason, code, str(details or "") if reason else "")


def denial(reason: str, permission: str) -> Forbidden:
    """A denied authorization decision as a typed refusal (decisions are answers; `require` makes them errors)."""
    cls = BY_REASON.get(reason)
    forbidden = cls if cls is not None and issubclass(cls, Forbidden) else Forbidden
    return forbidden(reason or "POLICY_DENIED", f"not allowed ({reason or 'POLICY_DENIED'})", permission=permission)
