"""gRPC edge of secrets: SecretsService.ResolveSecret, Encrypt, Decrypt. Fail closed when Vault is not configured."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from coresdk import reasons
from coresdk.errors import CoreSDKError, NotFound, Unavailable
from coresdk.v1 import secrets_pb2, secrets_pb2_grpc
from sidecar.grpc_errors import abort
from sidecar.metrics import SidecarMetrics
from sidecar.secrets.encryption import Encryptor
from sidecar.secrets.resolver import SecretResolver


class SecretsService(secrets_pb2_grpc.SecretsServiceServicer):
    def __init__(self, resolver: SecretResolver | None, encryptor: Encryptor | None, metrics: SidecarMetrics) -> None:
        self._resolver = resolver
        self._encryptor = encryptor
        self._metrics = metrics

    def _need(self) -> tuple[SecretResolver, Encryptor]:
        if self._resolver is None or self._encryptor is None:
            raise Unavailable(reasons.VAULT_NOT_CONFIGURED, "no Vault is configured (VAULT_ADDR)")
        return self._resolver, self._encryptor

    async def _guard(self, method: str, context: grpc.aio.ServicerContext[Any, Any], err: CoreSDKError) -> None:
        self._metrics.requests.labels(method, err.reason).inc()
        await abort(context, err)

    async def ResolveSecret(  # noqa: N802
        self, request: secrets_pb2.ResolveSecretRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> secrets_pb2.ResolveSecretResponse:
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
            await self._guard("ResolveSecret", context, err)
            raise
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
        try:
            _, encryptor = self._need()
            plaintext = await encryptor.decrypt(request.ciphertext, request.associated_data)
        except CoreSDKError as err:
            await self._guard("Decrypt", context, err)
            raise
        self._metrics.requests.labels("Decrypt", "ok").inc()
        return secrets_pb2.DecryptResponse(plaintext=plaintext)
