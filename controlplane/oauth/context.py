"""What every OAuth handler needs, assembled once by the process wiring."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter

from controlplane.audit.checkpoints import Checkpointer
from controlplane.audit.verify import Verifier
from controlplane.keys.manager import KeyManager
from controlplane.oauth.issue import TokenIssuer
from controlplane.secrets import ServerKeys
from controlplane.store.audit import AuditStore
from controlplane.store.store import Store
from coresdk.config.controlplane import ControlPlaneConfig
from coresdk.ratelimit import RateLimiter


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
    client_limiter: RateLimiter
    ip_limiter: RateLimiter
    login_limiter: RateLimiter  # per address and subject: refuses (429)
    audit: AuditRuntime
    login_user_limiter: RateLimiter | None = None  # per subject from all addresses: slows, never refuses
