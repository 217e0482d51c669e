"""Plain, immutable results of sidecar calls: what application code reads, with no protobuf in sight.

Each is built from its wire message in one `from_proto` function, so a backend that answers without gRPC (the
in-process engine) can build the same objects.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from google.protobuf import json_format, struct_pb2, timestamp_pb2

from coresdk.v1 import audit_pb2, common_pb2, masking_pb2, policy_pb2, secrets_pb2


def _time(ts: timestamp_pb2.Timestamp) -> dt.datetime | None:
    if ts.seconds == 0 and ts.nanos == 0:
        return None
    return ts.ToDatetime(tzinfo=dt.UTC)


def _claims(struct: struct_pb2.Struct) -> Mapping[str, Any]:
    return MappingProxyType(json_format.MessageToDict(struct))


@dataclass(frozen=True)
class Principal:
    """The verified identity of a request: every field comes from a token the sidecar checked."""

    subject: str
    tenant_id: str
    issuer: str = ""
    audience: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    client_id: str = ""
    token_id: str = ""
    issued_at: dt.datetime | None = None
    expires_at: dt.datetime | None = None
    claims: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}), repr=False, compare=False)

    @classmethod
    def from_proto(cls, p: common_pb2.Principal) -> Principal:
        return cls(
            subject=p.subject,
            tenant_id=p.tenant_id,
            issuer=p.issuer,
            audience=tuple(p.audience),
            scopes=tuple(p.scopes),
            roles=tuple(p.roles),
            client_id=p.client_id,
            token_id=p.token_id,
            issued_at=_time(p.issued_at),
            expires_at=_time(p.expires_at),
            claims=_claims(p.claims),
        )

    def to_proto(self) -> common_pb2.Principal:
        claims = struct_pb2.Struct()
        claims.update(dict(self.claims))
        return common_pb2.Principal(
            subject=self.subject,
            tenant_id=self.tenant_id,
            issuer=self.issuer,
            audience=self.audience,
            scopes=self.scopes,
            roles=self.roles,
            client_id=self.client_id,
            token_id=self.token_id,
            issued_at=self.issued_at,
            expires_at=self.expires_at,
            claims=claims,
        )


@dataclass(frozen=True)
class Decision:
    """An authorization answer. A denial is an answer, not an error: `require` turns it into `Forbidden`."""

    allowed: bool
    reason: str
    decision_id: str
    matched_rules: tuple[str, ...]
    principal: Principal | None

    @classmethod
    def from_proto(cls, d: policy_pb2.AuthorizeResponse) -> Decision:
        return cls(
            allowed=d.allowed,
            reason=d.reason,
            decision_id=d.decision_id,
            matched_rules=tuple(d.matched_rules),
            principal=Principal.from_proto(d.principal) if d.HasField("principal") else None,
        )


@dataclass(frozen=True)
class Secret:
    """A secret's value (when a key was asked for) or all its keys. Values never appear in repr or logs."""

    value: str = field(repr=False)
    data: Mapping[str, str] = field(repr=False)
    version: int
    created_time: dt.datetime | None
    stale: bool  # served from the sidecar's cache during a Vault outage, inside its stale window

    @classmethod
    def from_proto(cls, r: secrets_pb2.ResolveSecretResponse) -> Secret:
        return cls(
            value=r.value,
            data=MappingProxyType(dict(r.data)),
            version=r.version,
            created_time=_time(r.created_time),
            stale=r.stale,
        )


@dataclass(frozen=True)
class AuditReceipt:
    """The acknowledgement of a durable (fsynced) audit record."""

    id: str
    chain_id: str
    seq: int
    record_hash: str
    previous_hash: str

    @classmethod
    def from_proto(cls, r: audit_pb2.AppendResponse) -> AuditReceipt:
        return cls(r.id, r.chain_id, r.seq, r.record_hash, r.previous_hash)


@dataclass(frozen=True)
class AuditEvent:
    """One thing that happened, as the application tells it. Metadata is masked by the sidecar before hashing."""

    action: str
    outcome: str
    actor: str = "anonymous"
    resource: str = ""
    tenant_id: str = ""
    reason: str = ""
    ip: str = ""
    session_id: str = ""
    chain_id: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def to_proto(self) -> audit_pb2.AuditRecord:
        return audit_pb2.AuditRecord(
            chain_id=self.chain_id,
            actor=self.actor,
            action=self.action,
            resource=self.resource,
            outcome=self.outcome,
            tenant_id=self.tenant_id,
            ip=self.ip,
            session_id=self.session_id,
            reason=self.reason,
            metadata_json=json.dumps(dict(self.metadata), default=str),
        )


@dataclass(frozen=True)
class ChainReport:
    chain_valid: bool
    records_checked: int
    head_hash: str
    first_bad_chain_id: str
    first_bad_seq: int
    failure: str

    @classmethod
    def from_proto(cls, r: audit_pb2.VerifyResponse) -> ChainReport:
        return cls(r.chain_valid, r.records_checked, r.head_hash, r.first_bad_chain_id, r.first_bad_seq, r.failure)


@dataclass(frozen=True)
class Finding:
    entity_type: str
    start: int
    end: int
    confidence: float
    json_path: str
    operator: str


@dataclass(frozen=True)
class Masked:
    """Masked text (or JSON text) and what was found: types and spans only, never the original values."""

    output: str
    findings: tuple[Finding, ...]

    @classmethod
    def from_proto(cls, r: masking_pb2.MaskResponse) -> Masked:
        output = r.json if r.WhichOneof("output") == "json" else r.text
        found = tuple(Finding(f.entity_type, f.start, f.end, f.confidence, f.json_path, f.operator) for f in r.findings)
        return cls(output, found)


@dataclass(frozen=True)
class Ciphertext:
    ciphertext: str
    key_version: int

    @classmethod
    def from_proto(cls, r: secrets_pb2.EncryptResponse) -> Ciphertext:
        return cls(r.ciphertext, r.key_version)
