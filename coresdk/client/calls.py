"""Every sidecar call once: which RPC, the request built from plain arguments, how its answer is read, and whether
it may be retried. The async and the sync client only run these, so the two cannot drift apart.

Retry rule: only a call that changes nothing (everything but audit appends) is retried, and only when the sidecar
was not reached (UNAVAILABLE with no ErrorInfo reason, i.e. from the transport). An UNAVAILABLE the sidecar itself
answered (KEYS_UNAVAILABLE, VAULT_UNAVAILABLE, ...) is a considered refusal and is returned at once. All attempts
share the one deadline of the call.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import grpc
from google.protobuf import struct_pb2

from coresdk.client.errors import TokenMissing, denial
from coresdk.client.results import (
    AuditEvent,
    AuditReceipt,
    ChainReport,
    Ciphertext,
    Decision,
    Masked,
    Principal,
    Secret,
)
from coresdk.client.status import error_reason
from coresdk.v1 import audit_pb2, auth_pb2, masking_pb2, policy_pb2, secrets_pb2

T = TypeVar("T")
SERVICES = ("auth", "policy", "audit", "secrets", "masking")
_NAME = re.compile(r"[a-z][a-z0-9_.-]{0,63}")  # what the sidecar accepts as a resource or an action


@dataclass(frozen=True)
class Call(Generic[T]):
    service: str
    method: str
    request: Any
    parse: Callable[[Any], T]
    idempotent: bool = True


@dataclass(frozen=True)
class Retry:
    """Exponential backoff with full jitter, bounded by the call's deadline."""

    attempts: int = 3
    initial_backoff_seconds: float = 0.05
    max_backoff_seconds: float = 0.5

    def delays(self) -> Iterator[float]:
        for attempt in range(self.attempts - 1):
            yield random.uniform(0, min(self.max_backoff_seconds, self.initial_backoff_seconds * 2**attempt))


def should_retry(call: Call[Any], err: grpc.RpcError) -> bool:
    code = err.code() if hasattr(err, "code") else None
    return call.idempotent and code == grpc.StatusCode.UNAVAILABLE and not error_reason(err)


def parse_permission(permission: str) -> tuple[str, str]:
    """`"orders:read"` → `("orders", "read")`; a malformed permission is a programming error, raised at once."""
    resource, sep, action = permission.partition(":")
    if not sep or not _NAME.fullmatch(resource) or not _NAME.fullmatch(action):
        raise ValueError(f"permission must be 'resource:action' in lower case (e.g. 'orders:read'), got {permission!r}")
    return resource, action


def authenticate(token: str, audience: str = "") -> Call[Principal]:
    if not token:
        raise TokenMissing()
    return Call(
        "auth", "Authenticate", auth_pb2.AuthenticateRequest(token=token, audience=audience), Principal.from_proto
    )


def authorize(
    subject: str | Principal,
    resource: str,
    action: str,
    *,
    tenant_id: str = "",
    resource_owner: str = "",
    context: Mapping[str, Any] | None = None,
    request_id: str = "",
) -> Call[Decision]:
    """With a token and no tenant_id the decision is made in the token's own tenant (never a default tenant)."""
    request = policy_pb2.AuthorizeRequest(
        resource=resource,
        action=action,
        tenant_id=tenant_id,
        resource_owner=resource_owner,
        request_id=request_id,
    )
    if isinstance(subject, Principal):
        request.principal.CopyFrom(subject.to_proto())
    else:
        if not subject:
            raise TokenMissing()
        request.token = subject
        request.tenant_from_token = not tenant_id
    if context:
        request.context.CopyFrom(_struct(context))
    return Call("policy", "Authorize", request, Decision.from_proto)


def required(decision: Decision, permission: str) -> Principal:
    """The principal of an allowed decision, or the denial as a typed `Forbidden`."""
    if not decision.allowed or decision.principal is None:
        raise denial(decision.reason, permission)
    return decision.principal


def append(event: AuditEvent) -> Call[AuditReceipt]:
    # Not idempotent: a retried append could leave two records of one event.
    request = audit_pb2.AppendRequest(record=event.to_proto())
    return Call("audit", "Append", request, AuditReceipt.from_proto, idempotent=False)


def verify(chain_id: str = "", full: bool = False) -> Call[ChainReport]:
    return Call("audit", "Verify", audit_pb2.VerifyRequest(chain_id=chain_id, full=full), ChainReport.from_proto)


def secret(path: str, key: str = "", version: int = 0) -> Call[Secret]:
    request = secrets_pb2.ResolveSecretRequest(path=path, key=key, version=version)
    return Call("secrets", "ResolveSecret", request, Secret.from_proto)


def encrypt(plaintext: bytes, associated_data: bytes, key_name: str = "") -> Call[Ciphertext]:
    request = secrets_pb2.EncryptRequest(plaintext=plaintext, key_name=key_name, associated_data=associated_data)
    return Call("secrets", "Encrypt", request, Ciphertext.from_proto)


def decrypt(ciphertext: str, associated_data: bytes) -> Call[bytes]:
    request = secrets_pb2.DecryptRequest(ciphertext=ciphertext, associated_data=associated_data)
    return Call("secrets", "Decrypt", request, _plaintext)


def mask_text(text: str, policy: str = "") -> Call[Masked]:
    return Call("masking", "Mask", masking_pb2.MaskRequest(text=text, policy=policy), Masked.from_proto)


def mask_json(document: Any, policy: str = "") -> Call[Masked]:
    request = masking_pb2.MaskRequest(json=json.dumps(document), policy=policy)
    return Call("masking", "Mask", request, Masked.from_proto)


def _plaintext(response: secrets_pb2.DecryptResponse) -> bytes:
    return bytes(response.plaintext)


def _struct(values: Mapping[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(json.loads(json.dumps(dict(values), default=str)))
    return struct
