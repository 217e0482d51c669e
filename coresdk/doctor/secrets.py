"""Secrets: nothing usable in the store in the clear, nothing hardcoded in configuration files, Vault reachable with
working AppRole credentials. The scans reuse the masking detectors, so "a secret" means the same thing everywhere."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import hvac
import requests

from coresdk.doctor.model import Check, Context, Status, fail, ok, warn
from coresdk.masking.detectors import detect

SECRET_TYPES = {"PRIVATE_KEY", "JWT", "API_KEY", "URL_CREDENTIALS", "SECRET"}
ROWS_PER_TABLE = 5000
# Columns whose values must look sealed or hashed, whatever they contain.
SEALED_COLUMNS = {
    ("signing_keys", "private_key_enc"): re.compile(r"v1\.[A-Za-z0-9_=-]+"),
    ("users", "password_hash"): re.compile(r"\$argon2id?\$\S+"),
}
HASHED_COLUMNS = {("client_secrets", "secret_hash"), ("refresh_tokens", "token_hash"), ("auth_codes", "code_hash")}
_HEX64 = re.compile(r"[0-9a-f]{64}")
_ASSIGNMENT = re.compile(
    r"""^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*(?:SECRET|TOKEN|PASSWORD|PRIVATE_KEY|API_KEY)[A-Za-z0-9_]*)\s*[=:]\s*["']?([^"'\s#]*)""",
    re.IGNORECASE,
)
_REFERENCE = re.compile(r"^(?:\$\{?[A-Z_]+\}?|vault:.*|file:.*|/.*|<.*|true|false|\d+|)$", re.IGNORECASE)
# In configuration files only formats that are unmistakably credentials; "secret-looking" words are too common.
CONFIG_SECRET_TYPES = {"PRIVATE_KEY", "JWT", "API_KEY", "URL_CREDENTIALS"}
_TEXT_SUFFIXES = {".env", ".example", ".json", ".yaml", ".yml", ".toml", ".ini", ".conf", ".cfg", ".rego", ".txt"}


def _sqlite_rows(path: str) -> Iterator[tuple[str, str, str]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            cursor = conn.execute(f'SELECT * FROM "{table}" LIMIT {ROWS_PER_TABLE}')  # noqa: S608 - names from schema
            columns = [d[0] for d in cursor.description]
            for row in cursor:
                for column, value in zip(columns, row, strict=True):
                    if isinstance(value, str):
                        yield table, column, value
    finally:
        conn.close()


def _postgres_rows(url: str) -> list[tuple[str, str, str]]:
    import asyncpg

    async def scan() -> list[tuple[str, str, str]]:
        conn = await asyncpg.connect(url, timeout=5)
        out: list[tuple[str, str, str]] = []
        try:
            tables = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
            for t in tables:
                name = t["tablename"]
                for row in await conn.fetch(f'SELECT * FROM "{name}" LIMIT {ROWS_PER_TABLE}'):  # noqa: S608
                    out.extend((name, k, v) for k, v in row.items() if isinstance(v, str))
        finally:
            await conn.close()
        return out

    return asyncio.run(scan())


def store_values(ctx: Context) -> Iterator[tuple[str, str, str]]:
    data_dir = ctx.get("CORESDK_DATA_DIR", ".coresdk-data")
    url = ctx.get("DATABASE_URL", f"sqlite:///{Path(data_dir) / 'controlplane.db'}")
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
        if not Path(path).is_file():
            raise FileNotFoundError(f"no control-plane database at {path}")
        yield from _sqlite_rows(path)
    else:
        yield from _postgres_rows(url)


def store_encrypted(ctx: Context) -> tuple[Status, str, str]:
    problems: list[str] = []
    scanned = 0
    for table, column, value in store_values(ctx):
        scanned += 1
        sealed = SEALED_COLUMNS.get((table, column))
        if sealed is not None and not sealed.fullmatch(value):
            problems.append(f"{table}.{column} holds a value that is neither sealed nor a password hash")
        elif (table, column) in HASHED_COLUMNS and not _HEX64.fullmatch(value):
            problems.append(f"{table}.{column} holds a value that is not a keyed hash")
        elif table.startswith("audit_"):
            continue  # masked before hashing; its sealed bytes must not be rewritten anyway
        else:
            found = {f.entity_type for f in detect(value)} & SECRET_TYPES
            if found:
                problems.append(f"{table}.{column}: {', '.join(sorted(found))} in the clear")
    if problems:
        unique = sorted(set(problems))
        return fail("; ".join(unique[:5]), "store secrets only hashed (HMAC) or sealed (cse:v1 / v1.) — never plain")
    return ok(f"{scanned} stored values scanned: credentials hashed, keys sealed, no secret in the clear")


def _config_files(ctx: Context) -> Iterator[Path]:
    for root in ctx.scan_paths:
        if root.is_file():
            yield root
        elif root.is_dir():
            for path in sorted(root.rglob("*")):
                if path.is_file() and (path.suffix in _TEXT_SUFFIXES or path.name.endswith(".env")):
                    yield path


def no_hardcoded_secrets(ctx: Context) -> tuple[Status, str, str]:
    if not ctx.scan_paths:
        return warn("no configuration paths given", "pass --scan PATH for each configuration directory or env file")
    problems: list[str] = []
    files = 0
    for path in _config_files(ctx):
        files += 1
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if line.lstrip().startswith("#"):
                continue
            match = _ASSIGNMENT.match(line)
            if match and not _REFERENCE.match(match.group(2)):
                problems.append(f"{path}:{number} sets {match.group(1)} to a literal value")
                continue
            found = {f.entity_type for f in detect(line)} & CONFIG_SECRET_TYPES
            if found:
                problems.append(f"{path}:{number}: {', '.join(sorted(found))}")
    if problems:
        return fail(
            "; ".join(problems[:5]), "move secrets to Vault or a mounted secret file (*_FILE); never in configuration"
        )
    return ok(f"{files} configuration file(s) scanned, no secret found")


def vault_approle(ctx: Context) -> tuple[Status, str, str]:
    addr = ctx.get("VAULT_ADDR")
    if not addr:
        return fail("VAULT_ADDR is not set", "point the sidecar at Vault/OpenBao (VAULT_ADDR, CORESDK_VAULT_ROLE_ID)")
    role_id = ctx.get("CORESDK_VAULT_ROLE_ID")
    secret_id = ctx.get("CORESDK_VAULT_SECRET_ID")
    secret_file = ctx.get("CORESDK_VAULT_SECRET_ID_FILE")
    if not secret_id and secret_file:
        secret_id = Path(secret_file).read_text().strip()
    if not role_id or not secret_id:
        if ctx.get("CORESDK_VAULT_WRAPPED_SECRET_ID"):
            return warn("a response-wrapped secret ID is single-use; not consumed by the doctor", "")
        return fail("AppRole credentials are not set", "set CORESDK_VAULT_ROLE_ID and CORESDK_VAULT_SECRET_ID_FILE")
    client = hvac.Client(url=addr, namespace=ctx.get("VAULT_NAMESPACE") or None, timeout=int(ctx.timeout))
    try:
        login = client.auth.approle.login(role_id=role_id, secret_id=secret_id, use_token=True)
        ttl = int(login["auth"]["lease_duration"])
        client.auth.token.revoke_self()  # the doctor leaves no live token behind
    except (requests.RequestException, hvac.exceptions.VaultError) as exc:
        return fail(f"AppRole login at {addr} failed: {type(exc).__name__}", "check Vault and the AppRole credentials")
    return ok(f"AppRole login at {addr} succeeded (token TTL {ttl} s)")


CHECKS = [
    Check("secrets.at_rest", "Secrets at rest hashed or encrypted (store scan)", store_encrypted),
    Check("secrets.hardcoded", "No hardcoded secrets in configuration files", no_hardcoded_secrets),
    Check("vault.approle", "Vault reachable with valid AppRole credentials", vault_approle),
]
