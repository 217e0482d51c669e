"""The engine's settings — token validation, authorization, the audit journal — read once and validated at start.

The sidecar (its gRPC face) and the gateway (its HTTP face) read the same variables with the same rules, so the two
faces trust the same issuers, enforce the same token policy and fail closed the same way. Secure by default:
CORESDK_ENV defaults to production, where the issuer, audience and JWKS must be named. Development only fills in
the local control plane's values; it never turns a check off.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from coresdk.config.env import Env
from coresdk.errors import ConfigError

DEV_CONTROL_PLANE = "http://127.0.0.1:8080"
DEV_AUDIENCE = "coresdk"
MAX_TOKEN_TTL_CEILING = 3600
MAX_LEEWAY = 60
MIN_REFETCH_COOLDOWN = 30


@dataclass(frozen=True)
class IssuerConfig:
    issuer: str
    jwks_uri: str
    # The first audience is the default; a caller may ask for any other one in the tuple.
    audiences: tuple[str, ...]


@dataclass(frozen=True)
class JwksSettings:
    cache_min_seconds: int
    cache_max_seconds: int
    max_stale_seconds: int
    refetch_cooldown_seconds: int
    retry_max_seconds: int
    timeout_seconds: float
    max_bytes: int
    ca_file: Path | None


@dataclass(frozen=True)
class TokenPolicy:
    max_ttl_seconds: int
    leeway_seconds: int
    max_token_bytes: int
    require_at_jwt_typ: bool


@dataclass(frozen=True)
class RevocationSettings:
    """The control plane's access-token revocation feed, polled outbound."""

    url: str
    token: str
    poll_seconds: float
    max_stale_seconds: int


@dataclass(frozen=True)
class AuditSettings:
    directory: Path
    segment_bytes: int
    default_chain: str
    directory_variable: str  # the setting that chose `directory` (its own, or the data directory), for errors


@dataclass(frozen=True)
class PolicySettings:
    """Custom Rego rules: in-process files, or a remote OPA data API. Exactly one source, never both."""

    files: tuple[Path, ...]
    data_file: Path | None
    opa_url: str | None
    query: str  # a data path such as coresdk/authz, whose document has `allow` and optionally `reason`
    timeout_seconds: float


@dataclass(frozen=True)
class EngineConfig:
    """Everything the engine needs; built by load_engine_config from the service's environment."""

    env: str
    issuers: tuple[IssuerConfig, ...]
    jwks: JwksSettings
    tokens: TokenPolicy
    auth_cache_size: int
    audit: AuditSettings
    revocations: RevocationSettings | None = None
    masking_hmac_key: bytes | None = None
    admin_tenant_bypass: bool = False
    policy: PolicySettings | None = None
    audit_decisions: str = "deny"
    auth_workers: int = 0  # worker processes judging large batches (coresdk.auth.workers); 0: all in process

    @property
    def development(self) -> bool:
        return self.env == "development"


def _policy(env: Env) -> PolicySettings | None:
    source = env.raw("CORESDK_POLICY_FILE")
    opa = env.raw("OPA_URL")
    if source is None and opa is None:
        return None
    if source is not None and opa is not None:
        raise ConfigError("OPA_URL", "set either CORESDK_POLICY_FILE (in-process Rego) or OPA_URL, not both")
    query = env.text("CORESDK_POLICY_QUERY", "coresdk/authz") or "coresdk/authz"
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*", query):
        raise ConfigError("CORESDK_POLICY_QUERY", "must be a data path such as coresdk/authz")
    files: tuple[Path, ...] = ()
    if source is not None:
        path = Path(source)
        if path.is_dir():
            files = tuple(sorted(path.glob("*.rego")))
        elif path.is_file():
            files = (path,)
        if not files:
            raise ConfigError("CORESDK_POLICY_FILE", f"no .rego policy found at {source}")
    return PolicySettings(
        files=files,
        data_file=env.file("CORESDK_POLICY_DATA"),
        opa_url=env.fetch_url(opa, "OPA_URL").rstrip("/") if opa is not None else None,
        query=query,
        timeout_seconds=env.number("CORESDK_POLICY_TIMEOUT", 0.5, minimum=0.01, maximum=10.0),
    )


def _audiences(value: str, variable: str) -> tuple[str, ...]:
    auds = tuple(a.strip() for a in value.split(",") if a.strip())
    if not auds:
        raise ConfigError(variable, "must name at least one audience")
    return auds


def _issuers_from_file(env: Env, path: Path) -> list[IssuerConfig]:
    var = "CORESDK_ISSUERS_FILE"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(var, f"cannot read JSON from {path}: {exc}") from None
    entries = doc.get("issuers") if isinstance(doc, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ConfigError(var, 'must be {"issuers": [{"issuer", "jwks_uri", "audiences"}, ...]}')
    out = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or set(entry) - {"issuer", "jwks_uri", "audiences"}:
            raise ConfigError(var, f"issuers[{i}] must have exactly issuer, jwks_uri, audiences")
        iss, uri, auds = entry.get("issuer"), entry.get("jwks_uri"), entry.get("audiences")
        if not isinstance(iss, str) or not iss or not isinstance(uri, str):
            raise ConfigError(var, f"issuers[{i}] needs string issuer and jwks_uri")
        if not isinstance(auds, list) or not auds or not all(isinstance(a, str) and a for a in auds):
            raise ConfigError(var, f"issuers[{i}].audiences must be a non-empty list of strings")
        out.append(IssuerConfig(iss, env.fetch_url(uri, f"{var} issuers[{i}].jwks_uri"), tuple(auds)))
    return out


def _issuers(env: Env, development: bool) -> tuple[IssuerConfig, ...]:
    names = ("CORESDK_JWKS_URI", "CORESDK_EXPECTED_ISSUER", "CORESDK_EXPECTED_AUDIENCE")
    values = {n: env.raw(n) for n in names}
    issuers: list[IssuerConfig] = []
    file_path = env.file("CORESDK_ISSUERS_FILE")
    if file_path is not None:
        issuers.extend(_issuers_from_file(env, file_path))
    if development:
        values["CORESDK_JWKS_URI"] = values["CORESDK_JWKS_URI"] or f"{DEV_CONTROL_PLANE}/api/v1/jwks"
        values["CORESDK_EXPECTED_ISSUER"] = values["CORESDK_EXPECTED_ISSUER"] or DEV_CONTROL_PLANE
        values["CORESDK_EXPECTED_AUDIENCE"] = values["CORESDK_EXPECTED_AUDIENCE"] or DEV_AUDIENCE
    if file_path is None or any(values.values()):
        for name in names:
            if not values[name]:
                raise ConfigError(name, "is required outside development (CORESDK_ENV=development)")
        issuers.insert(
            0,
            IssuerConfig(
                issuer=str(values["CORESDK_EXPECTED_ISSUER"]),
                jwks_uri=env.fetch_url(str(values["CORESDK_JWKS_URI"]), "CORESDK_JWKS_URI"),
                audiences=_audiences(str(values["CORESDK_EXPECTED_AUDIENCE"]), "CORESDK_EXPECTED_AUDIENCE"),
            ),
        )
    seen: set[str] = set()
    for cfg in issuers:
        if cfg.issuer in seen:
            raise ConfigError("CORESDK_ISSUERS_FILE", f"issuer {cfg.issuer!r} is configured twice")
        seen.add(cfg.issuer)
    return tuple(issuers)


def load_engine_config(env: Env, audit: AuditSettings) -> EngineConfig:
    """The shared settings; `audit` names the face's own chain and journal directory (each face keeps its own)."""
    mode = env.choice("CORESDK_ENV", "production", ("production", "development"))
    development = mode == "development"
    env.host_list("CORESDK_PLAINTEXT_HOSTS")  # plain http only to hosts named here (a mesh with mTLS)
    cache_min = env.integer("CORESDK_JWKS_CACHE_MIN", 60, minimum=1, maximum=86400)
    cache_max = env.integer("CORESDK_JWKS_CACHE_MAX", 3600, minimum=1, maximum=86400)
    if cache_max < cache_min:
        raise ConfigError("CORESDK_JWKS_CACHE_MAX", "must be at least CORESDK_JWKS_CACHE_MIN")
    jwks = JwksSettings(
        cache_min_seconds=cache_min,
        cache_max_seconds=cache_max,
        max_stale_seconds=env.integer("CORESDK_JWKS_MAX_STALE", 900, minimum=0, maximum=86400),
        refetch_cooldown_seconds=env.integer(
            "CORESDK_JWKS_REFETCH_COOLDOWN", MIN_REFETCH_COOLDOWN, minimum=MIN_REFETCH_COOLDOWN, maximum=3600
        ),
        retry_max_seconds=env.integer("CORESDK_JWKS_RETRY_MAX", 30, minimum=1, maximum=3600),
        timeout_seconds=env.number("CORESDK_JWKS_TIMEOUT", 5.0, minimum=0.1, maximum=60.0),
        max_bytes=env.integer("CORESDK_JWKS_MAX_BYTES", 262144, minimum=1024, maximum=4 * 1024 * 1024),
        ca_file=env.file("CORESDK_JWKS_CA_FILE"),
    )
    tokens = TokenPolicy(
        max_ttl_seconds=env.integer(
            "CORESDK_MAX_TOKEN_TTL", MAX_TOKEN_TTL_CEILING, minimum=1, maximum=MAX_TOKEN_TTL_CEILING
        ),
        leeway_seconds=env.integer("CORESDK_CLOCK_LEEWAY", 30, minimum=0, maximum=MAX_LEEWAY),
        max_token_bytes=env.integer("CORESDK_MAX_TOKEN_BYTES", 8192, minimum=1024, maximum=65536),
        require_at_jwt_typ=env.flag("CORESDK_REQUIRE_AT_JWT_TYP", False),
    )
    revocations = None
    cp_url = env.raw("CORESDK_CP_URL")
    if cp_url is not None:
        env.fetch_url(cp_url, "CORESDK_CP_URL")
        revocations = RevocationSettings(
            url=cp_url.rstrip("/") + "/api/v1/revocations",
            token=env.required("CORESDK_CP_TOKEN", "is required with CORESDK_CP_URL (the sidecar credential)"),
            poll_seconds=env.number("CORESDK_REVOCATION_POLL", 2.0, minimum=0.2, maximum=60.0),
            max_stale_seconds=env.integer("CORESDK_REVOCATION_MAX_STALE", 60, minimum=5, maximum=3600),
        )
    hmac_key = env.raw("CORESDK_MASKING_HMAC_KEY")
    if hmac_key is not None and len(hmac_key) < 32:
        raise ConfigError("CORESDK_MASKING_HMAC_KEY", "must be at least 32 characters of random data")
    return EngineConfig(
        env=mode,
        issuers=_issuers(env, development),
        jwks=jwks,
        tokens=tokens,
        auth_cache_size=env.integer("CORESDK_AUTH_CACHE_SIZE", 10000, minimum=0, maximum=1_000_000),
        auth_workers=env.integer("CORESDK_AUTH_WORKERS", 0, minimum=0, maximum=64),
        audit=audit,
        revocations=revocations,
        masking_hmac_key=hmac_key.encode() if hmac_key else None,
        admin_tenant_bypass=env.flag("CORESDK_ADMIN_TENANT_BYPASS", False),
        policy=_policy(env),
        audit_decisions=env.choice("CORESDK_AUDIT_DECISIONS", "deny", ("bypass", "deny", "all")),
    )
