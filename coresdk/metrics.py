"""Prometheus metrics of the engine (token validation, authorization, audit) in one process — the sidecar or the
gateway — kept in a registry owned by the process wiring (no globals). Metric names keep their `coresdk_sidecar_`
prefix: dashboards depend on them."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class EngineMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "coresdk_sidecar_requests",
            "gRPC requests by method and result (ok or the refusal reason).",
            ["method", "result"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "coresdk_sidecar_request_seconds",
            "gRPC request handling time by method.",
            ["method"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.jwks_fetches = Counter(
            "coresdk_jwks_fetches",
            "JWKS fetch attempts by issuer, trigger (initial, refresh, unknown_kid) and result.",
            ["issuer", "trigger", "result"],
            registry=self.registry,
        )
        self.jwks_keys = Gauge(
            "coresdk_jwks_keys", "Usable verification keys per issuer.", ["issuer"], registry=self.registry
        )
        self.jwks_skipped_keys = Gauge(
            "coresdk_jwks_skipped_keys",
            "Keys of the published set that were refused (wrong use, size, curve...).",
            ["issuer"],
            registry=self.registry,
        )
        self.jwks_age = Gauge(
            "coresdk_jwks_age_seconds",
            "Seconds since the last successful JWKS fetch per issuer.",
            ["issuer"],
            registry=self.registry,
        )
        self.cache = Counter(
            "coresdk_auth_cache",
            "Verified-token cache lookups by result (hit, miss).",
            ["result"],
            registry=self.registry,
        )
        self.vault_requests = Counter(
            "coresdk_vault_requests", "Requests sent to Vault by result.", ["result"], registry=self.registry
        )
        self.vault_logins = Counter("coresdk_vault_logins", "AppRole logins.", registry=self.registry)
        self.vault_renewals = Counter("coresdk_vault_token_renewals", "Token renewals.", registry=self.registry)
        self.cache_size = Gauge("coresdk_auth_cache_entries", "Verified tokens cached.", registry=self.registry)
