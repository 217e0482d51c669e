"""The gRPC channel to the sidecar and its stubs, built the same way for the async and the sync client."""

from __future__ import annotations

from typing import Any

import grpc

from coresdk.client.settings import ClientSettings
from coresdk.v1 import audit_pb2_grpc, auth_pb2_grpc, masking_pb2_grpc, policy_pb2_grpc, secrets_pb2_grpc

_STUBS: dict[str, Any] = {
    "auth": auth_pb2_grpc.AuthServiceStub,
    "policy": policy_pb2_grpc.PolicyServiceStub,
    "audit": audit_pb2_grpc.AuditServiceStub,
    "secrets": secrets_pb2_grpc.SecretsServiceStub,
    "masking": masking_pb2_grpc.MaskingServiceStub,
}
# Reconnect quickly after a sidecar restart: the default backoff can reach two minutes, far past any deadline.
OPTIONS = (("grpc.initial_reconnect_backoff_ms", 100), ("grpc.max_reconnect_backoff_ms", 2000))


def credentials(settings: ClientSettings) -> grpc.ChannelCredentials | None:
    if settings.tls is None:
        return None
    ca, key, chain = settings.tls.read()
    creds: grpc.ChannelCredentials = grpc.ssl_channel_credentials(  # type: ignore[no-untyped-call]
        root_certificates=ca, private_key=key, certificate_chain=chain
    )
    return creds


def aio_channel(settings: ClientSettings) -> grpc.aio.Channel:
    creds = credentials(settings)
    if creds is None:
        return grpc.aio.insecure_channel(settings.address, options=OPTIONS)
    return grpc.aio.secure_channel(settings.address, creds, options=OPTIONS)


def sync_channel(settings: ClientSettings) -> grpc.Channel:
    creds = credentials(settings)
    channel: grpc.Channel = (
        grpc.insecure_channel(settings.address, options=OPTIONS)  # type: ignore[no-untyped-call]
        if creds is None
        else grpc.secure_channel(settings.address, creds, options=OPTIONS)  # type: ignore[no-untyped-call]
    )
    return channel


def stubs(channel: grpc.Channel | grpc.aio.Channel) -> dict[str, Any]:
    return {name: stub(channel) for name, stub in _STUBS.items()}
