"""The sidecar's settings (CORESDK_* variables), read once and validated at start.

Secure by default: CORESDK_ENV defaults to production, where the issuer, audience and JWKS must be named.
Development only fills in the local control plane's values; it never turns a check off.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from coresdk.audit import chain_id as chain_ids

# The engine's settings live in coresdk.config.engine (shared with the gateway); re-exported for existing imports.
from coresdk.config.engine import (
    DEV_AUDIENCE,
    DEV_CONTROL_PLANE,
    AuditSettings,
    EngineConfig,
    IssuerConfig,
    JwksSettings,
    PolicySettings,
    RevocationSettings,
    TokenPolicy,
    load_engine_config,
)
from coresdk.config.env import Env, is_loopback_host, split_host_port
from coresdk.errors import ConfigError

__all__ = [
    "DEV_AUDIENCE",
    "DEV_CONTROL_PLANE",
    "AuditSettings",
    "EngineConfig",
    "IssuerConfig",
    "JwksSettings",
    "PolicySettings",
    "RevocationSettings",
    "SidecarConfig",
    "TLSConfig",
    "TokenPolicy",
    "VaultSettings",
    "load_sidecar_config",
]


@dataclass(frozen=True)
class TLSConfig:
    cert_file: Path
    key_file: Path
    ca_file: Path


@dataclass(frozen=True)
class VaultSettings:
    addr: str
    role_id: str
    secret_id: str | None
    secret_id_file: Path | None
    wrapped_secret_id: str | None
    namespace: str | None
    ca_file: Path | None
    kv_mount: str
    transit_mount: str
    allowed_prefixes: tuple[str, ...]
    cache_ttl_seconds: float
    max_stale_seconds: float
    encryption_mode: str
    encryption_key: str
    data_key_path: str
    timeout_seconds: float


@dataclass(frozen=True)
class SidecarConfig:
    env: str
    sidecar_addr: str
    health_addr: str
    tls: TLSConfig | None
    issuers: tuple[IssuerConfig, ...]
    jwks: JwksSettings
    tokens: TokenPolicy
    auth_cache_size: int
    log_level: str
    engine: EngineConfig  # the same engine settings, as the engine takes them (coresdk.config.engine)
    revocations: RevocationSettings | None = None
    audit: AuditSettings | None = None
    vault: VaultSettings | None = None
    masking_hmac_key: bytes | None = None
    admin_tenant_bypass: bool = False
    policy: PolicySettings | None = None
    audit_decisions: str = "deny"

    @property
    def development(self) -> bool:
        return self.env == "development"


def _tls(env: Env, sidecar_addr: str) -> TLSConfig | None:
    names = ("CORESDK_TLS_CERT_FILE", "CORESDK_TLS_KEY_FILE", "CORESDK_TLS_CA_FILE")
    given = {n: env.raw(n) for n in names}
    host = (
        sidecar_addr if sidecar_addr.startswith("unix:") else split_host_port(sidecar_addr, "CORESDK_SIDECAR_ADDR")[0]
    )
    loopback = sidecar_addr.startswith("unix:") or is_loopback_host(host)
    if not any(given.values()):
        if not loopback:
            raise ConfigError(
                "CORESDK_TLS_CERT_FILE",
                f"CORESDK_SIDECAR_ADDR={sidecar_addr} is not loopback; mTLS (CORESDK_TLS_CERT_FILE, "
                "CORESDK_TLS_KEY_FILE, CORESDK_TLS_CA_FILE) is required to listen beyond this machine",
            )
        return None
    for name in names:
        if not given[name]:
            raise ConfigError(name, "is required when any CORESDK_TLS_* variable is set (mTLS needs all three)")
    files = [env.file(n) for n in names]
    cert, key, ca = (f for f in files if f is not None)
    return TLSConfig(cert_file=cert, key_file=key, ca_file=ca)


def _vault(env: Env) -> VaultSettings | None:
    """hvac reads only VAULT_* variables, so the server address, namespace and CA use those names."""
    addr = env.raw("VAULT_ADDR")
    if addr is None:
        return None
    env.fetch_url(addr, "VAULT_ADDR")
    secret_id, secret_file, wrapped = (
        env.raw("CORESDK_VAULT_SECRET_ID"),
        env.file("CORESDK_VAULT_SECRET_ID_FILE"),
        env.raw("CORESDK_VAULT_WRAPPED_SECRET_ID"),
    )
    if sum(x is not None for x in (secret_id, secret_file, wrapped)) != 1:
        raise ConfigError(
            "CORESDK_VAULT_SECRET_ID",
            "set exactly one of CORESDK_VAULT_SECRET_ID, CORESDK_VAULT_SECRET_ID_FILE, CORESDK_VAULT_WRAPPED_SECRET_ID",
        )
    prefixes = tuple(p.strip().strip("/") for p in (env.raw("CORESDK_SECRET_PATHS") or "").split(",") if p.strip())
    if not prefixes:
        raise ConfigError(
            "CORESDK_SECRET_PATHS", "is required with VAULT_ADDR: the path prefixes the sidecar may serve"
        )
    return VaultSettings(
        addr=addr,
        role_id=env.required("CORESDK_VAULT_ROLE_ID", "is required with VAULT_ADDR (AppRole)"),
        secret_id=secret_id,
        secret_id_file=secret_file,
        wrapped_secret_id=wrapped,
        namespace=env.raw("VAULT_NAMESPACE"),
        ca_file=env.file("VAULT_CACERT"),
        kv_mount=env.text("CORESDK_VAULT_KV_MOUNT", "secret") or "secret",
        transit_mount=env.text("CORESDK_VAULT_TRANSIT_MOUNT", "transit") or "transit",
        allowed_prefixes=prefixes,
        cache_ttl_seconds=env.number("CORESDK_SECRET_CACHE_TTL", 60.0, minimum=0.0, maximum=86400.0),
        max_stale_seconds=env.number("CORESDK_SECRET_MAX_STALE", 300.0, minimum=0.0, maximum=86400.0),
        encryption_mode=env.choice("CORESDK_ENCRYPTION_MODE", "transit", ("transit", "aesgcm")),
        encryption_key=env.text("CORESDK_ENCRYPTION_KEY", "coresdk") or "coresdk",
        data_key_path=env.text("CORESDK_DATA_KEY_PATH", "coresdk/data-key") or "coresdk/data-key",
        timeout_seconds=env.number("CORESDK_VAULT_TIMEOUT", 5.0, minimum=0.1, maximum=60.0),
    )


def load_sidecar_config(environ: Mapping[str, str]) -> SidecarConfig:
    env = Env(environ)
    sidecar_addr = env.text("CORESDK_SIDECAR_ADDR", "[::1]:50051") or "[::1]:50051"
    health_addr = env.text("CORESDK_HEALTH_ADDR", "127.0.0.1:9091") or "127.0.0.1:9091"
    split_host_port(health_addr, "CORESDK_HEALTH_ADDR")
    data_dir = Path(env.text("CORESDK_DATA_DIR", ".coresdk-data") or ".coresdk-data")
    chain = env.text("CORESDK_AUDIT_CHAIN", f"sidecar-{socket.gethostname()}") or "sidecar"
    if not chain_ids.is_valid(chain):
        raise ConfigError("CORESDK_AUDIT_CHAIN", chain_ids.problem(chain))
    audit_dir = Path(env.text("CORESDK_AUDIT_DIR", str(data_dir / "audit")) or data_dir / "audit")
    audit = AuditSettings(
        directory=audit_dir,
        segment_bytes=env.integer("CORESDK_AUDIT_SEGMENT_BYTES", 64 * 1024 * 1024, minimum=4096, maximum=2**34),
        default_chain=chain,
        directory_variable="CORESDK_DATA_DIR" if audit_dir == data_dir / "audit" else "CORESDK_AUDIT_DIR",
    )
    engine = load_engine_config(env, audit)
    return SidecarConfig(
        env=engine.env,
        masking_hmac_key=engine.masking_hmac_key,
        admin_tenant_bypass=engine.admin_tenant_bypass,
        policy=engine.policy,
        audit_decisions=engine.audit_decisions,
        vault=_vault(env),
        revocations=engine.revocations,
        audit=audit,
        sidecar_addr=sidecar_addr,
        health_addr=health_addr,
        tls=_tls(env, sidecar_addr),
        issuers=engine.issuers,
        jwks=engine.jwks,
        tokens=engine.tokens,
        auth_cache_size=engine.auth_cache_size,
        log_level=env.choice("CORESDK_LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR")),
        engine=engine,
    )
