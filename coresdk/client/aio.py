"""The async sidecar client for asyncio applications (FastAPI, Starlette, aiohttp).

Make one per process and share it: it holds the process's one channel, opened on first use inside the running
event loop, so it can be created at import time. Every call has a deadline; failures arrive as the typed
exceptions of `coresdk.client.errors`, never as gRPC errors.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Mapping
from typing import Any, TypeVar

import grpc

from coresdk.client import calls
from coresdk.client.channel import aio_channel, stubs
from coresdk.client.errors import SidecarUnavailable, from_rpc_error
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
from coresdk.client.settings import ClientSettings

T = TypeVar("T")


class CallingClient:
    """The Backend methods, each one call of `coresdk.client.calls`; a subclass says how a call is answered
    (`_run`): over gRPC by the sidecar (AsyncClient) or by the engine in process (InProcessClient)."""

    async def _run(self, call: calls.Call[T]) -> T:
        raise NotImplementedError

    async def authenticate(self, token: str, audience: str = "") -> Principal:
        return await self._run(calls.authenticate(token, audience))

    async def authorize(
        self,
        subject: str | Principal,
        resource: str,
        action: str,
        *,
        tenant_id: str = "",
        resource_owner: str = "",
        context: Mapping[str, Any] | None = None,
        request_id: str = "",
    ) -> Decision:
        call = calls.authorize(
            subject,
            resource,
            action,
            tenant_id=tenant_id,
            resource_owner=resource_owner,
            context=context,
            request_id=request_id,
        )
        return await self._run(call)

    async def require(
        self, token: str, permission: str, *, resource_owner: str = "", request_id: str = ""
    ) -> Principal:
        """The token's principal if it may `permission` ("orders:read") in its own tenant; else a typed refusal."""
        resource, action = calls.parse_permission(permission)
        decision = await self.authorize(token, resource, action, resource_owner=resource_owner, request_id=request_id)
        return calls.required(decision, permission)

    async def append(self, event: AuditEvent) -> AuditReceipt:
        return await self._run(calls.append(event))

    async def verify(self, chain_id: str = "", full: bool = False) -> ChainReport:
        return await self._run(calls.verify(chain_id, full))

    async def secret(self, path: str, key: str = "", version: int = 0) -> Secret:
        """Through the sidecar's cache (its TTL and stale window); nothing is cached again here, so a rotation
        reaches the application as soon as it reaches the sidecar."""
        return await self._run(calls.secret(path, key, version))

    async def encrypt(self, plaintext: bytes, associated_data: bytes, key_name: str = "") -> Ciphertext:
        return await self._run(calls.encrypt(plaintext, associated_data, key_name))

    async def decrypt(self, ciphertext: str, associated_data: bytes) -> bytes:
        return await self._run(calls.decrypt(ciphertext, associated_data))

    async def mask_text(self, text: str, policy: str = "") -> Masked:
        return await self._run(calls.mask_text(text, policy))

    async def mask_json(self, document: Any, policy: str = "") -> Masked:
        return await self._run(calls.mask_json(document, policy))


class AsyncClient(CallingClient):
    """Implements `coresdk.client.backend.Backend` over gRPC to the sidecar."""

    def __init__(self, settings: ClientSettings | None = None, retry: calls.Retry | None = None) -> None:
        self.settings = settings or ClientSettings()
        self._retry = retry or calls.Retry()
        self._channel: grpc.aio.Channel | None = None
        self._stubs: dict[str, Any] = {}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AsyncClient:
        return cls(ClientSettings.from_env(os.environ if environ is None else environ))

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        channel, self._channel, self._stubs = self._channel, None, {}
        if channel is not None:
            await channel.close()

    async def _run(self, call: calls.Call[T]) -> T:
        if self._channel is None:
            self._channel = aio_channel(self.settings)
            self._stubs = stubs(self._channel)
        method = getattr(self._stubs[call.service], call.method)
        deadline = time.monotonic() + self.settings.timeout_seconds
        delays = self._retry.delays()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SidecarUnavailable(message="sidecar deadline exceeded")
            try:
                return call.parse(await method(call.request, timeout=remaining))
            except grpc.aio.AioRpcError as err:
                delay = next(delays, None) if calls.should_retry(call, err) else None
                if delay is None:
                    raise from_rpc_error(err) from None
            await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
