"""The control plane's settings (CORESDK_*, DATABASE_URL, CPOD_ADMIN_TOKEN), read once and validated at start.

Outside development every credential must be supplied: the admin token, the server secret (pepper for client
secrets and key-encryption key), the issuer URL. Development generates them into the data directory (mode 0600)
so that one command runs everything; it never relaxes a protocol rule.

Sidecars enrol and hold a credential of their own, bound to their chains. The shared CORESDK_SIDECAR_TOKEN is a
development convenience: it is accepted only in development. In production it is optional and, if set, refused
with a message that says so (and `coresdk doctor` fails), never silently accepted.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from coresdk.config.engine import DEV_AUDIENCE, DEV_CONTROL_PLANE
from coresdk.config.env import Env, split_host_port
from coresdk.errors import ConfigError
from coresdk.proxies import TrustedProxies, parse_trusted_proxies

MAX_ACCESS_TTL = 3600
CODE_TTL = 60
MAX_REFRESH_GRACE = 60
SQLITE_SINGLE_NODE = "CORESDK_CP_SQLITE_SINGLE_NODE"
# How long the JWKS may be cached (Cache-Control max-age): a rotated-in key is published this long before it signs.
JWKS_MAX_AGE = 300
SIGNING_ALGS = ("RS256", "PS256", "ES256")  # what the sidecar verifies (coresdk.jose.ALLOWED_ALGS)


@dataclass(frozen=True)
class RateLimits:
    client_per_second: float
    client_burst: int
    ip_per_second: float
    ip_burst: int
    login_per_minute: int
    login_user_per_minute: int = 100  # all addresses together: past this, attempts are slowed, not refused


@dataclass(frozen=True)
class AuditConfig:
    checkpoint_every_records: int
    checkpoint_every_seconds: float
    sink_dir: Path | None
    key_name: str
    syslog_addr: tuple[str, int] | None = None
    hec_url: str | None = None
    hec_token: str | None = None
    retention_days: int = 400


@dataclass(frozen=True)
class ControlPlaneConfig:
    env: str
    addr: str
    issuer: str
    audience: str
    data_dir: Path
    database_url: str
    admin_token: str
    sidecar_token: str | None  # the shared token: accepted only in development
    server_secret: bytes
    signing_key_path: Path | None
    access_token_ttl: int
    refresh_idle_ttl: int
    refresh_absolute_ttl: int
    refresh_grace_seconds: int
    max_body_bytes: int
    rate_limits: RateLimits
    audit: AuditConfig
    trusted_proxies: TrustedProxies = field(default_factory=TrustedProxies)
    public_origins: tuple[str, ...] = ()  # origins (besides the issuer's) the sign-in form may be posted from
    # A new signing key is in the JWKS this long before any replica signs with it (publish, then activate).
    key_activation_delay: float = JWKS_MAX_AGE
    # What new signing keys (rotation, a new initial key) are made for; a stored key keeps its own algorithm.
    signing_alg: str = "RS256"

    @property
    def development(self) -> bool:
        return self.env == "development"


def dev_secret_file(path: Path, nbytes: int = 32) -> str:
    """Read a generated development secret, creating it (0600) on first use."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(nbytes))
    return path.read_text().strip()


def _secret(env: Env, name: str, development: bool, dev_path: Path, minimum: int = 32) -> str:
    value = env.raw(name)
    if value is None:
        if not development:
            raise ConfigError(name, "is required outside development")
        value = dev_secret_file(dev_path)
    if len(value) < minimum:
        raise ConfigError(name, f"must be at least {minimum} characters of random data")
    return value


def _shared_sidecar_token(env: Env, development: bool, data_dir: Path) -> str | None:
    if development:
        return _secret(env, "CORESDK_SIDECAR_TOKEN", True, data_dir / "sidecar-token")
    value = env.raw("CORESDK_SIDECAR_TOKEN")
    if value is not None and len(value) < 32:
        raise ConfigError("CORESDK_SIDECAR_TOKEN", "must be at least 32 characters of random data")
    return value


def _key_name(env: Env, issuer: str) -> str:
    """The checkpoint signer's name: the first word of every signature line, so one printable word."""
    name = env.text("CORESDK_AUDIT_KEY_NAME", urlsplit(issuer).netloc or "coresdk") or "coresdk"
    if len(name) > 128 or "+" in name or not name.isprintable() or any(ch.isspace() for ch in name):
        raise ConfigError("CORESDK_AUDIT_KEY_NAME", "must be 1-128 printable characters without spaces or '+'")
    return name


def _database_url(env: Env, data_dir: Path, development: bool) -> str:
    """The store; in production PostgreSQL, unless one single-node control plane on SQLite is asked for by name.

    SQLite holds one process's writes on one disk: no replica, no failover, and a second control plane on the same
    file would fight over it. That is right for a laptop and may be a deliberate choice for a small single node,
    never a silent default of a production deployment.
    """
    url = env.raw("DATABASE_URL") or f"sqlite:///{data_dir / 'controlplane.db'}"
    if not url.startswith(("sqlite:///", "postgres://", "postgresql://")):
        raise ConfigError("DATABASE_URL", "must be sqlite:///PATH or postgresql://USER@HOST:PORT/DB")
    if url.startswith("sqlite:///") and not development and not env.flag(SQLITE_SINGLE_NODE, False):
        raise ConfigError(
            "DATABASE_URL",
            "production needs PostgreSQL (postgresql://USER@HOST:PORT/DB); SQLite is for development "
            f"(CORESDK_ENV=development) or a deliberately single-node control plane ({SQLITE_SINGLE_NODE}=true)",
        )
    return url


def origin_of(url: str) -> str:
    """scheme://host[:port] of a URL, as a browser writes it in the Origin header (default ports dropped)."""
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    default = {"http": 80, "https": 443}.get(scheme)
    return f"{scheme}://{host}" + (f":{port}" if port is not None and port != default else "")


def _public_origins(env: Env) -> tuple[str, ...]:
    var = "CORESDK_PUBLIC_ORIGINS"
    out = []
    for item in (env.raw(var) or "").split(","):
        item = item.strip()
        if not item:
            continue
        parts = urlsplit(item)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") or parts.query:
            raise ConfigError(var, f"{item!r} is not an origin (scheme://host[:port])")
        out.append(origin_of(item))
    return tuple(out)


def load_controlplane_config(environ: Mapping[str, str]) -> ControlPlaneConfig:
    env = Env(environ)
    mode = env.choice("CORESDK_ENV", "production", ("production", "development"))
    development = mode == "development"
    env.host_list("CORESDK_PLAINTEXT_HOSTS")  # plain http only to hosts named here (a mesh with mTLS)
    addr = env.text("CORESDK_CP_ADDR", "127.0.0.1:8080") or "127.0.0.1:8080"
    split_host_port(addr, "CORESDK_CP_ADDR")
    data_dir = Path(env.text("CORESDK_DATA_DIR", ".coresdk-data") or ".coresdk-data")
    issuer = env.raw("CORESDK_ISSUER") or (DEV_CONTROL_PLANE if development else None)
    if issuer is None:
        raise ConfigError("CORESDK_ISSUER", "is required outside development (the public issuer URL)")
    key_path = env.raw("CORESDK_SIGNING_KEY_PATH")
    signing_key_path = Path(key_path) if key_path else None
    if signing_key_path is not None and not signing_key_path.is_file():
        raise ConfigError("CORESDK_SIGNING_KEY_PATH", f"file not found: {signing_key_path}")
    if signing_key_path is None and not development:
        raise ConfigError(
            "CORESDK_SIGNING_KEY_PATH",
            "is required outside development (a PEM private key: RSA for RS256/PS256, P-256 for ES256)",
        )
    access_ttl = env.integer("CORESDK_ACCESS_TOKEN_TTL", 900, minimum=60, maximum=MAX_ACCESS_TTL)
    idle = env.integer("CORESDK_REFRESH_IDLE_TTL", 14 * 86400, minimum=300, maximum=90 * 86400)
    absolute = env.integer("CORESDK_REFRESH_ABSOLUTE_TTL", 30 * 86400, minimum=300, maximum=365 * 86400)
    if absolute < idle:
        raise ConfigError("CORESDK_REFRESH_ABSOLUTE_TTL", "must be at least CORESDK_REFRESH_IDLE_TTL")
    sink = env.raw("CORESDK_AUDIT_SINK_DIR")
    syslog = env.raw("CORESDK_AUDIT_SYSLOG_ADDR")
    hec_url = env.raw("CORESDK_AUDIT_HEC_URL")
    audit = AuditConfig(
        checkpoint_every_records=env.integer("CORESDK_AUDIT_CHECKPOINT_EVERY", 1000, minimum=1, maximum=10_000_000),
        checkpoint_every_seconds=env.number("CORESDK_AUDIT_CHECKPOINT_SECONDS", 30.0, minimum=0.5, maximum=86400.0),
        sink_dir=Path(sink) if sink else (data_dir / "audit-sink" if development else None),
        key_name=_key_name(env, issuer),
        syslog_addr=split_host_port(syslog, "CORESDK_AUDIT_SYSLOG_ADDR") if syslog else None,
        hec_url=env.fetch_url(hec_url, "CORESDK_AUDIT_HEC_URL") if hec_url else None,
        hec_token=env.required("CORESDK_AUDIT_HEC_TOKEN", "is required with CORESDK_AUDIT_HEC_URL")
        if hec_url
        else None,
        retention_days=env.integer("CORESDK_AUDIT_RETENTION_DAYS", 400, minimum=1, maximum=36500),
    )
    return ControlPlaneConfig(
        env=mode,
        audit=audit,
        addr=addr,
        issuer=issuer,
        audience=env.text("CORESDK_TOKEN_AUDIENCE", DEV_AUDIENCE) or DEV_AUDIENCE,
        data_dir=data_dir,
        database_url=_database_url(env, data_dir, development),
        admin_token=_secret(env, "CPOD_ADMIN_TOKEN", development, data_dir / "admin-token"),
        sidecar_token=_shared_sidecar_token(env, development, data_dir),
        server_secret=_secret(env, "CORESDK_SERVER_SECRET", development, data_dir / "server-secret").encode(),
        signing_key_path=signing_key_path,
        access_token_ttl=access_ttl,
        refresh_idle_ttl=idle,
        refresh_absolute_ttl=absolute,
        refresh_grace_seconds=env.integer("CORESDK_REFRESH_GRACE", 0, minimum=0, maximum=MAX_REFRESH_GRACE),
        max_body_bytes=env.integer("CORESDK_CP_MAX_BODY", 65536, minimum=1024, maximum=10 * 1024 * 1024),
        rate_limits=RateLimits(
            client_per_second=env.number("CORESDK_RATE_CLIENT_RPS", 50.0, minimum=0.1, maximum=1e6),
            client_burst=env.integer("CORESDK_RATE_CLIENT_BURST", 100, minimum=1, maximum=1_000_000),
            ip_per_second=env.number("CORESDK_RATE_IP_RPS", 100.0, minimum=0.1, maximum=1e6),
            ip_burst=env.integer("CORESDK_RATE_IP_BURST", 200, minimum=1, maximum=1_000_000),
            login_per_minute=env.integer("CORESDK_RATE_LOGIN_PER_MIN", 10, minimum=1, maximum=10_000),
            login_user_per_minute=env.integer("CORESDK_RATE_LOGIN_USER_PER_MIN", 100, minimum=1, maximum=100_000),
        ),
        trusted_proxies=parse_trusted_proxies(env.raw("CORESDK_TRUSTED_PROXIES")),
        public_origins=_public_origins(env),
        signing_alg=env.choice("CORESDK_SIGNING_ALG", "RS256", SIGNING_ALGS),
        key_activation_delay=env.number(
            "CORESDK_KEY_ACTIVATION_DELAY", float(JWKS_MAX_AGE), minimum=1.0, maximum=7 * 86400.0
        ),
    )
