"""The Python SDK's sidecar client: typed results and refusals instead of stubs and status codes.

    client = AsyncClient.from_env()          # one per process (CORESDK_SIDECAR_ADDR, CORESDK_TLS_*)
    principal = await client.require(token, "orders:read")
    password = (await client.secret("orders/db", "password")).value

`Client` is the sync twin for WSGI applications. Framework integrations live in `coresdk.integrations`.
"""

from coresdk.client.aio import AsyncClient
from coresdk.client.backend import Backend, SyncBackend
from coresdk.client.errors import (
    AudienceMismatch,
    AuditUnavailable,
    AuthenticationFailed,
    BadSignature,
    Forbidden,
    InternalError,
    InvalidRequest,
    KeysUnavailable,
    NotFound,
    NotOwner,
    PolicyEngineUnavailable,
    RevocationsUnavailable,
    RoleInsufficient,
    ScopeMissing,
    SecretNotFound,
    SecretPathNotAllowed,
    SidecarError,
    SidecarUnavailable,
    TenantMismatch,
    TenantRequired,
    TokenExpired,
    TokenMissing,
    TokenRevoked,
    Unavailable,
    VaultUnavailable,
)
from coresdk.client.results import (
    AuditEvent,
    AuditReceipt,
    ChainReport,
    Ciphertext,
    Decision,
    Finding,
    Masked,
    Principal,
    Secret,
)
from coresdk.client.settings import ClientSettings, ClientTLS
from coresdk.client.status import error_reason
from coresdk.client.sync import Client

__all__ = [
    "AsyncClient",
    "AudienceMismatch",
    "AuditEvent",
    "AuditReceipt",
    "AuditUnavailable",
    "AuthenticationFailed",
    "Backend",
    "BadSignature",
    "ChainReport",
    "Ciphertext",
    "Client",
    "ClientSettings",
    "ClientTLS",
    "Decision",
    "Finding",
    "Forbidden",
    "InternalError",
    "InvalidRequest",
    "KeysUnavailable",
    "Masked",
    "NotFound",
    "NotOwner",
    "PolicyEngineUnavailable",
    "Principal",
    "RevocationsUnavailable",
    "RoleInsufficient",
    "ScopeMissing",
    "Secret",
    "SecretNotFound",
    "SecretPathNotAllowed",
    "SidecarError",
    "SidecarUnavailable",
    "SyncBackend",
    "TenantMismatch",
    "TenantRequired",
    "TokenExpired",
    "TokenMissing",
    "TokenRevoked",
    "Unavailable",
    "VaultUnavailable",
    "error_reason",
]
