"""The thin sync twin of `AsyncClient` for WSGI applications (Flask) and scripts: the same calls (coresdk.client.calls),
the same deadlines, retry rule and typed exceptions, over a blocking channel that is safe to share between threads.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from typing import Any, TypeVar

import grpc

from coresdk.client import calls
from coresdk.client.channel import stubs, sync_channel
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


class Client:
    """Implements `coresdk.client.backend.SyncBackend`. One per process, shared by every worker thread."""

    def __init__(self, settings: ClientSettings | None = None, retry: calls.Retry | None = None) -> None:
        self.settings = settings or ClientSettings()
        self._retry = retry or calls.Retry()
        self._lock = threading.Lock()
        self._channel: grpc.Channel | None = None
        self._stubs: dict[str, Any] = {}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Client:
        return cls(ClientSettings.from_env(os.environ if environ is None else environ))

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            channel, self._channel, self._stubs = self._channel, None, {}
        if channel is not None:
            channel.close()  # type: ignore[no-untyped-call]

    def _stub(self, service: str) -> Any:
        with self._lock:
            if self._channel is None:
                self._channel = sync_channel(self.settings)
                self._stubs = stubs(self._channel)
            return self._stubs[service]

    def _run(self, call: calls.Call[T]) -> T:
        method = getattr(self._stub(call.service), call.method)
        deadline = time.monotonic() + self.settings.timeout_seconds
        delays = self._retry.delays()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SidecarUnavailable(message="sidecar deadline exceeded")
            try:
                return call.parse(method(call.request, timeout=remaining))
            except grpc.RpcError as err:
                delay = next(delays, None) if calls.should_retry(call, err) else None
                if delay is None:
                    raise from_rpc_error(err) from None
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))

    def authenticate(self, token: str, audience: str = "") -> Principal:
        return self._run(calls.authenticate(token, audience))

    def authorize(
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
        return self._run(call)

    def require(self, token: str, permission: str, *, resource_owner: str = "", request_id: str = "") -> Principal:
        resource, action = calls.parse_permission(permission)
        decision = self.authorize(token, resource, action, resource_owner=resource_owner, request_id=request_id)
        return calls.required(decision, permission)

    def append(self, event: AuditEvent) -> AuditReceipt:
        return self._run(calls.append(event))

    def verify(self, chain_id: str = "", full: bool = False) -> ChainReport:
        return self._run(calls.verify(chain_id, full))

    def secret(self, path: str, key: str = "", version: int = 0) -> Secret:
        return self._run(calls.secret(path, key, version))

    def encrypt(self, plaintext: bytes, associated_data: bytes, key_name: str = "") -> Ciphertext:
        return self._run(calls.encrypt(plaintext, associated_data, key_name))

    def decrypt(self, ciphertext: str, associated_data: bytes) -> bytes:
        return self._run(calls.decrypt(ciphertext, associated_data))

    def mask_text(self, text: str, policy: str = "") -> Masked:
        return self._run(calls.mask_text(text, policy))

    def mask_json(self, document: Any, policy: str = "") -> Masked:
        return self._run(calls.mask_json(document, policy))
