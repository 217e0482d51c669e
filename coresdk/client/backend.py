"""What an application (and every framework integration) needs of CoreSDK, independent of how it is answered.

`AsyncClient` and `Client` implement these over gRPC to the sidecar. A backend that runs the same engine in
process (no sidecar hop) implements the same protocols, so integrations and application code do not change when a
Python service switches between the two.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from coresdk.client.results import AuditEvent, AuditReceipt, Decision, Masked, Principal, Secret


class Backend(Protocol):
    async def authenticate(self, token: str, audience: str = "") -> Principal: ...

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
    ) -> Decision: ...

    async def require(
        self, token: str, permission: str, *, resource_owner: str = "", request_id: str = ""
    ) -> Principal: ...

    async def append(self, event: AuditEvent) -> AuditReceipt: ...

    async def secret(self, path: str, key: str = "", version: int = 0) -> Secret: ...

    async def mask_text(self, text: str, policy: str = "") -> Masked: ...

    async def close(self) -> None: ...


class SyncBackend(Protocol):
    def authenticate(self, token: str, audience: str = "") -> Principal: ...

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
    ) -> Decision: ...

    def require(self, token: str, permission: str, *, resource_owner: str = "", request_id: str = "") -> Principal: ...

    def append(self, event: AuditEvent) -> AuditReceipt: ...

    def secret(self, path: str, key: str = "", version: int = 0) -> Secret: ...

    def mask_text(self, text: str, policy: str = "") -> Masked: ...

    def close(self) -> None: ...
