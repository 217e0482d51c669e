"""The SDK without a sidecar hop: the same engine (coresdk.engine) in the application's own process.

`InProcessClient` implements the same `Backend` protocol as `AsyncClient`, so the framework integrations and
application code do not change when a Python service switches: token validation, authorization (built-in rules and
Rego) and an fsynced, hash-chained audit journal shipped to the control plane with the service's own credential
run here, with the sidecar's settings (`CORESDK_JWKS_URI`, `CORESDK_EXPECTED_*`, `CORESDK_CP_URL` +
`CORESDK_CP_TOKEN`, `CORESDK_POLICY_FILE`, ...; the journal in `CORESDK_AUDIT_DIR`, chain `CORESDK_AUDIT_CHAIN`).
Refusals are the same typed exceptions. Secrets stay with the sidecar (Vault credentials do not belong in every
application): `secret()` is `VaultUnavailable(VAULT_NOT_CONFIGURED)` here.

The calls are the ones `coresdk.client.calls` defines for the sidecar, answered by the engine instead of over gRPC,
so both backends build and read exactly the same messages.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import grpc

from coresdk import reasons
from coresdk.audit import chain_id as chain_ids
from coresdk.audit.record import proto_fields
from coresdk.client import calls
from coresdk.client.aio import CallingClient
from coresdk.client.errors import SidecarError, from_reason
from coresdk.config.engine import AuditSettings, load_engine_config
from coresdk.config.env import Env
from coresdk.engine import Engine
from coresdk.errors import ConfigError, CoreSDKError, InvalidArgument, Unavailable
from coresdk.v1 import audit_pb2, masking_pb2, policy_pb2

T = TypeVar("T")


def _error(err: CoreSDKError) -> SidecarError:
    """The engine's typed error as the SDK's, exactly as the sidecar's gRPC status would have been read."""
    return from_reason(err.reason, getattr(grpc.StatusCode, err.code.name), err.message)


class InProcessClient(CallingClient):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._started: asyncio.Task[None] | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> InProcessClient:
        env = Env(os.environ if environ is None else environ)
        data_dir = Path(env.text("CORESDK_DATA_DIR", ".coresdk-data") or ".coresdk-data")
        chain = env.text("CORESDK_AUDIT_CHAIN", f"app-{socket.gethostname()}") or "app"
        if not chain_ids.is_valid(chain):
            raise ConfigError("CORESDK_AUDIT_CHAIN", chain_ids.problem(chain))
        audit_dir = Path(env.text("CORESDK_AUDIT_DIR", str(data_dir / "audit")) or data_dir / "audit")
        audit = AuditSettings(
            directory=audit_dir,
            segment_bytes=env.integer("CORESDK_AUDIT_SEGMENT_BYTES", 64 * 1024 * 1024, minimum=4096, maximum=2**34),
            default_chain=chain,
            directory_variable="CORESDK_DATA_DIR" if audit_dir == data_dir / "audit" else "CORESDK_AUDIT_DIR",
        )
        return cls(Engine(load_engine_config(env, audit)))

    @property
    def engine(self) -> Engine:
        return self._engine

    async def _ready(self) -> None:
        """Start the engine once, on first use, inside the running loop (as AsyncClient opens its channel)."""
        if self._started is None:
            self._started = asyncio.ensure_future(self._engine.start())
        await asyncio.shield(self._started)

    async def _run(self, call: calls.Call[T]) -> T:
        await self._ready()
        try:
            reply = await self._dispatch(call)
        except CoreSDKError as err:
            raise _error(err) from None
        return call.parse(reply)

    async def _dispatch(self, call: calls.Call[Any]) -> Any:
        request = call.request
        if (call.service, call.method) == ("auth", "Authenticate"):
            return await self._engine.validator.authenticate(request.token, request.audience)
        if (call.service, call.method) == ("policy", "Authorize"):
            result = await self._engine.authorizer.authorize(request)
            return policy_pb2.AuthorizeResponse(
                allowed=result.decision.allowed,
                reason=result.decision.reason,
                decision_id=result.decision_id,
                matched_rules=list(result.decision.matched_rules),
                principal=result.principal,
            )
        if (call.service, call.method) == ("audit", "Append"):
            record = request.record
            body = self._engine.audit_body(proto_fields(record))
            (sealed,) = await self._engine.record([body], record.chain_id or None)
            return audit_pb2.AppendResponse(
                id=body["id"],
                chain_id=sealed.chain_id,
                seq=sealed.seq,
                record_hash=sealed.record_hash,
                previous_hash=sealed.previous_hash,
            )
        if (call.service, call.method) == ("masking", "Mask") and request.WhichOneof("input") == "text":
            masked, findings = self._engine.masker.mask_text(request.text, request.policy)
            return masking_pb2.MaskResponse(
                text=masked,
                findings=[
                    masking_pb2.Finding(
                        entity_type=f.entity_type,
                        start=f.start,
                        end=f.end,
                        confidence=f.confidence,
                        operator=f.operator,
                        json_path=f.json_path,
                    )
                    for f in findings
                ],
            )
        if call.service == "secrets":  # Vault credentials stay with the sidecar
            raise Unavailable(reasons.VAULT_NOT_CONFIGURED, f"{call.method} is served by the sidecar, not in process")
        raise InvalidArgument(
            "MALFORMED_REQUEST", f"{call.service}.{call.method} is served by the sidecar, not in process"
        )

    async def close(self) -> None:
        if self._started is not None:
            await self._engine.stop()
            self._started = None
