"""One line per configuration variable, for the generated reference (docs/config-reference.md). A variable the
configuration code reads without a line here fails the test that regenerates the reference."""

from __future__ import annotations

DESCRIPTIONS: dict[str, str] = {
    # shared
    "CORESDK_ENV": "`production` (default) or `development`; development eases setup, never skips a signature check",
    "CORESDK_DATA_DIR": "directory for generated keys, the SQLite database and the audit journal",
    "CORESDK_LOG_LEVEL": "DEBUG, INFO, WARNING or ERROR",
    "CORESDK_CP_URL": "internal URL of the control plane (revocation feed, audit shipping, OAuth forwarding)",
    "CORESDK_SIDECAR_ADDR": "sidecar gRPC address; loopback only (`[::1]:50051`), or mTLS for another address",
    "CORESDK_PLAINTEXT_HOSTS": "comma-separated exact host names that may be reached over plain http (only where a "
    "service mesh gives those connections mTLS); every other http URL off loopback is refused",
    "CORESDK_TRUSTED_PROXIES": "comma-separated CIDRs of proxies whose Forwarded / X-Forwarded-For is believed "
    "(default: none; the TCP peer is the client)",
    # sidecar: tokens
    "CORESDK_HEALTH_ADDR": "loopback address of /healthz, /readyz and /metrics",
    "CORESDK_JWKS_URI": "JWKS of the trusted issuer (https, or http to loopback)",
    "CORESDK_EXPECTED_ISSUER": "exact `iss` of accepted tokens",
    "CORESDK_EXPECTED_AUDIENCE": "comma-separated accepted `aud` values (a request may pick one of them)",
    "CORESDK_ISSUERS_FILE": 'JSON file of further issuers: {"issuers": [{issuer, jwks_uri, audiences}]}',
    "CORESDK_JWKS_CA_FILE": "CA bundle for fetching the JWKS",
    "CORESDK_JWKS_TIMEOUT": "seconds per JWKS fetch",
    "CORESDK_JWKS_CACHE_MIN": "lower bound on the JWKS cache lifetime (seconds), whatever Cache-Control says",
    "CORESDK_JWKS_CACHE_MAX": "upper bound on the JWKS cache lifetime (seconds)",
    "CORESDK_JWKS_MAX_STALE": "seconds a JWKS may be served stale while its issuer is unreachable; then UNAVAILABLE",
    "CORESDK_JWKS_RETRY_MAX": "longest back-off between JWKS fetch retries (seconds)",
    "CORESDK_JWKS_MAX_BYTES": "largest JWKS document accepted",
    "CORESDK_JWKS_REFETCH_COOLDOWN": "seconds between refetches triggered by unknown `kid` values",
    "CORESDK_MAX_TOKEN_TTL": "longest accepted token lifetime (exp - iat), at most 3600 s",
    "CORESDK_CLOCK_LEEWAY": "seconds of clock skew tolerated on exp/nbf/iat",
    "CORESDK_MAX_TOKEN_BYTES": "largest token accepted",
    "CORESDK_REQUIRE_AT_JWT_TYP": "accept only RFC 9068 access tokens (`typ: at+jwt`)",
    "CORESDK_AUTH_CACHE_SIZE": "verified tokens kept in memory (0 disables the cache)",
    "CORESDK_AUTH_WORKERS": "worker processes that verify the tokens of large AuthenticateBatch calls in parallel "
    "(0: all in the serving process)",
    "CORESDK_TLS_CERT_FILE": "server certificate for gRPC over mTLS (required off loopback)",
    "CORESDK_TLS_KEY_FILE": "private key of CORESDK_TLS_CERT_FILE",
    "CORESDK_TLS_CA_FILE": "CA that client certificates must chain to",
    "CORESDK_CP_TOKEN": "this sidecar's (or gateway's) enrolled credential at the control plane (revocations, audit "
    "ingest of its bound chains)",
    "CORESDK_REVOCATION_POLL": "seconds between revocation feed polls",
    "CORESDK_REVOCATION_MAX_STALE": "seconds without a fresh revocation feed before every token is refused",
    # sidecar: authorization
    "CORESDK_ADMIN_TENANT_BYPASS": "let admins act across tenants; every bypass is audited (off by default)",
    "CORESDK_POLICY_FILE": "Rego file or directory evaluated in-process (regorus); a broken policy stops start-up",
    "CORESDK_POLICY_DATA": "JSON data document for the in-process Rego policies",
    "CORESDK_POLICY_QUERY": "data path of the decision document (`allow`, `reason`)",
    "CORESDK_POLICY_TIMEOUT": "seconds to wait for OPA; no answer is 503, never an allow",
    "OPA_URL": "remote OPA server (data API) instead of in-process Rego",
    "CORESDK_AUDIT_DECISIONS": "which decisions are appended to the audit chain: bypass, deny (default) or all",
    # sidecar: audit and masking
    "CORESDK_AUDIT_DIR": "directory of the append-only audit journal (defaults under CORESDK_DATA_DIR)",
    "CORESDK_AUDIT_SEGMENT_BYTES": "journal segment size before rotation into a sealed segment",
    "CORESDK_AUDIT_CHAIN": "the sidecar's default chain id",
    "CORESDK_MASKING_HMAC_KEY": "key for stable pseudonyms (tokenize operator), at least 32 characters",
    # sidecar: secrets and encryption
    "VAULT_ADDR": "Vault/OpenBao address",
    "VAULT_CACERT": "CA bundle for Vault",
    "VAULT_NAMESPACE": "Vault namespace",
    "CORESDK_VAULT_ROLE_ID": "AppRole role_id",
    "CORESDK_VAULT_SECRET_ID": "AppRole secret_id (prefer CORESDK_VAULT_SECRET_ID_FILE)",
    "CORESDK_VAULT_SECRET_ID_FILE": "file holding the AppRole secret_id",
    "CORESDK_VAULT_WRAPPED_SECRET_ID": "response-wrapping token for the secret_id, unwrapped once at start",
    "CORESDK_VAULT_KV_MOUNT": "KV v2 mount",
    "CORESDK_VAULT_TRANSIT_MOUNT": "transit mount for envelope encryption",
    "CORESDK_VAULT_TIMEOUT": "seconds per Vault request",
    "CORESDK_SECRET_PATHS": "comma-separated path prefixes the sidecar will serve; anything else is refused",
    "CORESDK_SECRET_CACHE_TTL": "seconds a resolved secret is cached",
    "CORESDK_SECRET_MAX_STALE": "seconds a cached secret may be served while Vault is unreachable; then UNAVAILABLE",
    "CORESDK_ENCRYPTION_MODE": "transit (Vault transit engine) or aesgcm (AES-256-GCM data key held in Vault KV)",
    "CORESDK_ENCRYPTION_KEY": "transit key name",
    "CORESDK_DATA_KEY_PATH": "KV path of the data key in aesgcm mode",
    # control plane
    "CORESDK_CP_ADDR": "control plane listen address (internal; default 127.0.0.1:8080)",
    "CORESDK_ISSUER": "public issuer URL put in `iss` and the discovery document",
    "CORESDK_TOKEN_AUDIENCE": "`aud` of issued access tokens",
    "CORESDK_SIGNING_KEY_PATH": "initial signing private key (PEM: RSA for RS256/PS256, P-256 EC for ES256); "
    "required outside development",
    "CORESDK_SIGNING_ALG": "RS256 (default), PS256 or ES256: the algorithm new signing keys are made for; "
    "stored keys keep theirs",
    "CORESDK_ACCESS_TOKEN_TTL": "access token lifetime in seconds (at most 3600)",
    "CORESDK_REFRESH_IDLE_TTL": "a refresh token unused this long expires (seconds)",
    "CORESDK_REFRESH_ABSOLUTE_TTL": "a refresh token family ends this long after sign-in (seconds)",
    "CORESDK_REFRESH_GRACE": "seconds a just-rotated refresh token may be retried for the same successor (0: none)",
    "CORESDK_CP_MAX_BODY": "largest request body the control plane reads",
    "CPOD_ADMIN_TOKEN": "bearer token of the admin API; required outside development",
    "CORESDK_SIDECAR_TOKEN": "shared sidecar credential, accepted only in development; sidecars enrol instead "
    "(`coresdk sidecar enrol`, POST /api/v1/sidecars)",
    "CORESDK_SERVER_SECRET": "root secret for the client-secret pepper, token hashes and sealed values",
    "DATABASE_URL": "postgresql://USER@HOST:PORT/DB; sqlite:///PATH (the default) only in development or single-node",
    "CORESDK_KEY_ACTIVATION_DELAY": "seconds a rotated-in signing key is published before any replica signs with it "
    "(default 300, the JWKS max-age)",
    "CORESDK_CP_SQLITE_SINGLE_NODE": "`true` lets a production control plane run on SQLite: one process, one disk",
    "CORESDK_RATE_CLIENT_RPS": "token endpoint requests per second per client",
    "CORESDK_RATE_CLIENT_BURST": "token endpoint burst per client",
    "CORESDK_RATE_IP_RPS": "requests per second per source address",
    "CORESDK_RATE_IP_BURST": "burst per source address",
    "CORESDK_RATE_LOGIN_PER_MIN": "password attempts per minute per subject and address",
    "CORESDK_RATE_LOGIN_USER_PER_MIN": "password attempts per minute per subject from all addresses, beyond which "
    "each attempt is slowed (never refused)",
    "CORESDK_PUBLIC_ORIGINS": "comma-separated origins besides the issuer's from which the sign-in form may be "
    "posted (e.g. the control plane's own address when it is also reached directly)",
    "CORESDK_AUDIT_CHECKPOINT_EVERY": "sign a Merkle checkpoint after this many records",
    "CORESDK_AUDIT_CHECKPOINT_SECONDS": "and at least this often (seconds)",
    "CORESDK_AUDIT_KEY_NAME": "name of the checkpoint signing key in signed notes",
    "CORESDK_AUDIT_SINK_DIR": "directory sink for records and checkpoints (off-box only on a separate mount)",
    "CORESDK_AUDIT_SYSLOG_ADDR": "host:port of an RFC 5424 syslog (TCP) sink",
    "CORESDK_AUDIT_HEC_URL": "Splunk HTTP Event Collector URL",
    "CORESDK_AUDIT_HEC_TOKEN": "HEC token",
    "CORESDK_AUDIT_RETENTION_DAYS": "days audit records are kept before signed pruning",
    # gateway
    "CORESDK_GATEWAY_ADDR": "gateway listen address",
    "CORESDK_GATEWAY_MODE": "`proxy` (default: decide and forward) or `authz` (only the nginx auth_request decision "
    "endpoint `GET /coresdk/authz`; see config/nginx/)",
    "CORESDK_UPSTREAM_URL": "the application behind the gateway (proxy mode; required there)",
    "CORESDK_ROUTES_FILE": "route map, resources, plans and tenants (JSON), validated at start",
    "CORESDK_GATEWAY_MAX_BODY": "largest request body forwarded",
    "CORESDK_GATEWAY_MAX_HEADER_BYTES": "longest request line or header field",
    "CORESDK_GATEWAY_MAX_HEADERS": "most header fields per request",
    "CORESDK_GATEWAY_TIMEOUT": "seconds to wait for the upstream",
    "CORESDK_GATEWAY_AUDIT": "one audit record per request through the sidecar (default on)",
    "CORESDK_GATEWAY_AUDIT_CHAIN": "the gateway's chain id",
    "CORESDK_GATEWAY_AUDIT_DIR": "the gateway's own audit journal (default `<CORESDK_DATA_DIR>/gateway-audit`)",
    "CORESDK_MANIFEST_KEYS": 'trust file of signed MCP tool manifests: {"keys": ["ed25519:<base64>"], "revoked": '
    '["<manifest id>"]} (required with an MCP route)',
    "CORESDK_MANIFEST_DIR": "directory of signed tool manifests, one `*.json` per tool (required with an MCP route)",
    "CORESDK_QUOTA_DATABASE_URL": "PostgreSQL shared by gateway replicas for quotas (default: in memory)",
}

# Read by `coresdk doctor` only.
DOCTOR_VARIABLES: dict[str, str] = {
    "CORESDK_CP_TOKEN_FILE": "file holding the sidecar's credential, so the doctor can check it is an enrolled one",
    "CORESDK_GATEWAY_URL": "URL the doctor probes the gateway at (default from CORESDK_GATEWAY_ADDR)",
    "CORESDK_CP_REPLICA_URLS": "comma-separated URLs of each control-plane replica for the doctor's replica checks "
    "(default: CORESDK_CP_URL asked several times)",
    "CORESDK_COMPLIANCE_FRAMEWORK": "pci, hipaa or soc2 (default): the audit retention the doctor requires",
    "CPOD_ADMIN_TOKEN_FILE": "file holding the admin token, instead of CPOD_ADMIN_TOKEN",
}
