"""gRPC edge of secrets: SecretsService.ResolveSecret, Encrypt, Decrypt. Fail closed when Vault is not configured.

Every ResolveSecret and Decrypt answer — the value, or the refusal — is given only after its audit record (path or
key id, caller, outcome; never the value) is durable in the sidecar's chain; if it cannot be written the caller gets
UNAVAILABLE instead.
"""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from coresdk import reasons
from coresdk.audit.record import clip
from coresdk.encryption.envelope import decode
from coresdk.errors import CoreSDKError, NotFound, Unavailable
from coresdk.metrics import EngineMetrics
from coresdk.v1 import secrets_pb2, secrets_pb2_grpc
from sidecar.grpc_errors import abort
from sidecar.secrets.audit import DECRYPT_ACTION, RESOLVE_ACTION, Access, SecretsTrail
from sidecar.secrets.encryption import Encryptor
from sidecar.secrets.resolver import SecretResolver


def _key_id(ciphertext: str) -> str:
    """mode:key of a ciphertext (transit key name or data-key version), or "unknown" when it is not one of ours."""
    try:
        envelope = decode(ciphertext)
    except CoreSDKError:
        return "unknown"
    return clip(f"{envelope.mode}:{envelope.key}", 128)


class SecretsService(secrets_pb2_grpc.SecretsServiceServicer):
    def __init__(
        self,
        resolver: SecretResolver | None,
        encryptor: Encryptor | None,
        metrics: EngineMetrics,
        trail: SecretsTrail,
    ) -> None:
        self._resolver = resolver
        self._encryptor = encryptor
        self._metrics = metrics
        self._trail = trail

    def _need(self) -> tuple[SecretResolver, Encryptor]:
        if self._resolver is None or self._encryptor is None:
            raise Unavailable(reasons.VAULT_NOT_CONFIGURED, "no Vault is configured (VAULT_ADDR)")
        return self._resolver, self._encryptor

    async def _guard(self, method: str, context: grpc.aio.ServicerContext[Any, Any], err: CoreSDKError) -> None:
        self._metrics.requests.labels(method, err.reason).inc()
        await abort(context, err)

    async def _audited(
        self,
        method: str,
        context: grpc.aio.ServicerContext[Any, Any],
        access: Access,
        err: CoreSDKError | None,
    ) -> None:
        """Record the answer about to be given; abort with UNAVAILABLE if it cannot be, else with err if any."""
        try:
            await self._trail.append(access, context, err)
        except CoreSDKError as audit_err:
            await self._guard(method, context, audit_err)
        if err is not None:
            await self._guard(method, context, err)

    async def ResolveSecret(  # noqa: N802
        self, request: secrets_pb2.ResolveSecretRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> secrets_pb2.ResolveSecretResponse:
        access = Access(
            RESOLVE_ACTION,
            f"secret/{request.path}",
            {"path": clip(request.path), "field": clip(request.key), "version_requested": request.version},
        )
        try:
            resolver, _ = self._need()
            secret = await resolver.resolve(request.path, request.version)
            created = Timestamp()
            created.FromJsonString(
                secret.created_time[:26].rstrip("Z") + "Z" if "." in secret.created_time else secret.created_time
            )
            reply = secrets_pb2.ResolveSecretResponse(version=secret.version, created_time=created, stale=secret.stale)
            if request.key:
                if request.key not in secret.data:
                    raise NotFound(reasons.SECRET_NOT_FOUND, "no such key in this secret")
                reply.value = secret.data[request.key]
            else:
                reply.data.update(secret.data)
        except CoreSDKError as err:
            await self._audited("ResolveSecret", context, access, err)
            raise
        access.metadata.update(version=secret.version, stale=secret.stale)
        await self._audited("ResolveSecret", context, access, None)
        self._metrics.requests.labels("ResolveSecret", "stale" if secret.stale else "ok").inc()
        return reply

    async def Encrypt(  # noqa: N802
        self, request: secrets_pb2.EncryptRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> secrets_pb2.EncryptResponse:
        try:
            _, encryptor = self._need()
            ciphertext, version = await encryptor.encrypt(request.plaintext, request.associated_data, request.key_name)
        except CoreSDKError as err:
            await self._guard("Encrypt", context, err)
            raise
        self._metrics.requests.labels("Encrypt", "ok").inc()
        return secrets_pb2.EncryptResponse(ciphertext=ciphertext, key_version=version)

    async def Decrypt(  # noqa: N802
        self, request: secrets_pb2.DecryptRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> secrets_pb2.DecryptResponse:
        key_id = _key_id(request.ciphertext)
        access = Access(
            DECRYPT_ACTION,
            f"key/{key_id}",
            {"key_id": key_id, "context": clip(request.associated_data.decode(errors="replace"))},
        )
        try:
            _, encryptor = self._need()
            plaintext = await encryptor.decrypt(request.ciphertext, request.associated_data)
        except CoreSDKError as err:
            await self._audited("Decrypt", context, access, err)
            raise
        await self._audited("Decrypt", context, access, None)
        self._metrics.requests.labels("Decrypt", "ok").inc()
        return secrets_pb2.DecryptResponse(plaintext=plaintext)
