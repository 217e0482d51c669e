"""The tenant's plan and quota: no plan is a refusal, and so is any failure to count (fail closed)."""

from __future__ import annotations

import logging

from coresdk.config.gateway import Entitlements
from coresdk.errors import Unavailable
from gateway.quota import QuotaStore
from gateway.refusals import Refusal, unavailable

log = logging.getLogger("coresdk.gateway")


class EntitlementCheck:
    def __init__(self, entitlements: Entitlements, quotas: QuotaStore) -> None:
        self._ent = entitlements
        self._quotas = quotas

    async def check(self, tenant_id: str) -> None:
        name = self._ent.tenants.get(tenant_id) or self._ent.default_plan
        if name is None:
            raise Refusal(403, "no_entitlement", "this tenant has no plan", "NO_ENTITLEMENT")
        try:
            wait = await self._quotas.take(self._ent.plans[name], tenant_id)
        except Unavailable as err:
            log.error("entitlement check failed reason=%s: %s", err.reason, err)
            raise unavailable("the entitlement check", err.reason) from None
        except Exception:
            log.exception("entitlement check failed")
            raise unavailable("the entitlement check", "QUOTA_ERROR") from None
        if wait is not None:
            raise Refusal(
                429, "quota_exceeded", f"plan {name} quota exceeded", "QUOTA_EXCEEDED", {"Retry-After": str(wait)}
            )
