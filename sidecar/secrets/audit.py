"""Who read which secret, and who decrypted under which key: a record of the sidecar's chain for every answer.

A secret read or a decryption is exactly what an investigation needs to reconstruct, so ResolveSecret and Decrypt
append a record — the path or key id, the caller, the outcome, never the value or the plaintext — before they answer.
A record that cannot be written means no answer: the caller gets UNAVAILABLE, as an authorization decision that must
be audited and cannot be is not given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import grpc

from coresdk.audit.log import AuditLog
from coresdk.audit.record import clip, validate_fields
from coresdk.errors import CoreSDKError, PermissionDenied
from coresdk.masking.engine import Masker

RESOLVE_ACTION = "secrets.resolve"
DECRYPT_ACTION = "secrets.decrypt"


@dataclass
class Access:
    """One secret access being answered: what was asked for, and what the answer said about it (filled in)."""

    action: str
    resource: str
    metadata: dict[str, Any] = field(default_factory=dict)


def caller_of(context: grpc.aio.ServicerContext[Any, Any]) -> tuple[str, str]:
    """(actor, peer address): the mTLS client certificate's name when there is one, else the peer address.

    The sidecar listens on loopback (or behind mTLS); the peer is the process that asked, the certificate the
    workload identity that was proven.
    """
    peer = clip(unquote(context.peer() or ""))  # gRPC percent-encodes it: ipv6:%5B::1%5D:port
    auth = context.auth_context() or {}
    for key in ("x509_common_name", "x509_subject_alternative_name"):
        names = list(auth.get(key) or [])
        if names:
            return clip(names[0].decode(errors="replace")), peer
    return peer or "unknown", peer


def outcome_of(err: CoreSDKError | None) -> tuple[str, str]:
    if err is None:
        return "success", ""
    return ("deny" if isinstance(err, PermissionDenied) else "error"), err.reason


class SecretsTrail:
    def __init__(self, audit: AuditLog, chain_id: str, masker: Masker | None = None) -> None:
        self._audit = audit
        self._chain = chain_id
        self._masker = masker

    async def append(
        self, access: Access, context: grpc.aio.ServicerContext[Any, Any], err: CoreSDKError | None
    ) -> None:
        """Durably record the access; raises Unavailable when the journal cannot take it."""
        actor, peer = caller_of(context)
        outcome, reason = outcome_of(err)
        metadata: Any = {**access.metadata, "peer": peer}
        resource = clip(access.resource)
        if self._masker is not None:  # a refused path or a record id may carry an e-mail address; the chain never does
            metadata, _ = self._masker.mask_json(metadata)
            resource, _ = self._masker.mask_text(resource)
        body = validate_fields(
            {
                "actor": actor,
                "action": access.action,
                "resource": resource,
                "outcome": outcome,
                "reason": reason,
                "metadata": metadata,
            }
        )
        await self._audit.append([(self._chain, body)])
