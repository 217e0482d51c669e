"""What every OAuth handler needs, assembled once by the process wiring."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter

from controlplane.audit.checkpoints import Checkpointer
from controlplane.audit.verify import Verifier
from controlplane.keys.manager import KeyManager
from controlplane.oauth.issue import TokenIssuer
from controlplane.secrets import ServerKeys
from controlplane.store.audit import AuditStore
from controlplane.store.leader import Leadership
from controlplane.store.rate_limits import MemoryRateBuckets, RateBuckets
from controlplane.store.store import Store
from coresdk.config.controlplane import ControlPlaneConfig


class ControlPlaneMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.rate_limited = Counter(
            "coresdk_cp_rate_limited",
            "Requests answered 429, by endpoint and key kind.",
            ["endpoint", "kind"],
            registry=self.registry,
        )
        self.tokens = Counter(
            "coresdk_cp_token_requests",
            "Token endpoint requests by grant type and result.",
            ["grant_type", "result"],
            registry=self.registry,
        )


@dataclass(frozen=True)
class Limiter:
    """One named limit (rate, burst) over buckets that live where the store says (shared on PostgreSQL)."""

    name: str
    rate_per_second: float
    burst: int
    buckets: RateBuckets

    async def take(self, key: str) -> int | None:
        """None when allowed, else seconds to wait (Retry-After)."""
        return await self.buckets.take(f"{self.name}:{key}", self.rate_per_second, self.burst)


@dataclass
class AuditRuntime:
    store: AuditStore
    checkpointer: Checkpointer
    verifier: Verifier


@dataclass
class Context:
    config: ControlPlaneConfig
    store: Store
    server_keys: ServerKeys
    keys: KeyManager
    issuer: TokenIssuer
    metrics: ControlPlaneMetrics
    client_limiter: Limiter
    ip_limiter: Limiter
    login_limiter: Limiter  # per address and subject: refuses (429)
    audit: AuditRuntime
    login_user_limiter: Limiter | None = None  # per subject from all addresses: slows, never refuses
    leadership: Leadership | None = None  # None: the only node (tests that build a context by hand)
    buckets: RateBuckets = field(default_factory=MemoryRateBuckets)
