"""Versioned schema migrations, applied in order at start-up inside one transaction each.

Written in the SQL both backends share (times are epoch seconds as DOUBLE PRECISION, booleans INTEGER 0/1, lists
and objects JSON TEXT); `{serial}` is the one dialect difference. Add a migration; never edit a shipped one.
"""

from __future__ import annotations

import time

from controlplane.store.db import DATABASE_ERRORS, Database, StoreUnavailable

_SERIAL = {"sqlite": "INTEGER PRIMARY KEY AUTOINCREMENT", "postgres": "BIGSERIAL PRIMARY KEY"}

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (
        1,
        "oauth core",
        [
            """CREATE TABLE oauth_apps (
                id TEXT PRIMARY KEY,
                client_id TEXT NOT NULL UNIQUE,
                name TEXT NOT NULL,
                client_type TEXT NOT NULL,
                scopes TEXT NOT NULL,
                redirect_uris TEXT NOT NULL,
                grant_types TEXT NOT NULL,
                refresh_in_cookie INTEGER NOT NULL,
                tenant_id TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL)""",
            """CREATE TABLE client_secrets (
                id TEXT PRIMARY KEY,
                app_id TEXT NOT NULL REFERENCES oauth_apps(id) ON DELETE CASCADE,
                secret_hash TEXT NOT NULL UNIQUE,
                created_at DOUBLE PRECISION NOT NULL,
                expires_at DOUBLE PRECISION)""",
            "CREATE INDEX client_secrets_app ON client_secrets(app_id)",
            """CREATE TABLE users (
                id TEXT PRIMARY KEY,
                subject TEXT NOT NULL UNIQUE,
                tenant_id TEXT NOT NULL,
                roles TEXT NOT NULL,
                password_hash TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL)""",
            """CREATE TABLE auth_codes (
                code_hash TEXT PRIMARY KEY,
                client_id TEXT NOT NULL,
                redirect_uri TEXT NOT NULL,
                code_challenge TEXT NOT NULL,
                subject TEXT NOT NULL,
                tenant_id TEXT NOT NULL,
                roles TEXT NOT NULL,
                scopes TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                expires_at DOUBLE PRECISION NOT NULL,
                used_at DOUBLE PRECISION,
                family_id TEXT)""",
            """CREATE TABLE token_families (
                id TEXT PRIMARY KEY,
                client_id TEXT NOT NULL,
                subject TEXT NOT NULL,
                tenant_id TEXT NOT NULL,
                roles TEXT NOT NULL,
                scopes TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                absolute_expires_at DOUBLE PRECISION NOT NULL,
                revoked_at DOUBLE PRECISION,
                revoked_reason TEXT)""",
            """CREATE TABLE refresh_tokens (
                token_hash TEXT PRIMARY KEY,
                family_id TEXT NOT NULL REFERENCES token_families(id) ON DELETE CASCADE,
                created_at DOUBLE PRECISION NOT NULL,
                idle_expires_at DOUBLE PRECISION NOT NULL,
                used_at DOUBLE PRECISION,
                successor_blob TEXT)""",
            "CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id)",
            """CREATE TABLE access_tokens (
                jti TEXT PRIMARY KEY,
                family_id TEXT,
                client_id TEXT NOT NULL,
                subject TEXT NOT NULL,
                scopes TEXT NOT NULL,
                issued_at DOUBLE PRECISION NOT NULL,
                expires_at DOUBLE PRECISION NOT NULL,
                revoked_at DOUBLE PRECISION)""",
            "CREATE INDEX access_tokens_family ON access_tokens(family_id)",
            """CREATE TABLE revocations (
                seq {serial},
                jti TEXT NOT NULL,
                expires_at DOUBLE PRECISION NOT NULL,
                revoked_at DOUBLE PRECISION NOT NULL)""",
            """CREATE TABLE token_events (
                id {serial},
                type TEXT NOT NULL,
                client_id TEXT NOT NULL,
                subject TEXT NOT NULL,
                family_id TEXT NOT NULL,
                ip TEXT NOT NULL,
                detail TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL)""",
            "CREATE INDEX token_events_type_time ON token_events(type, created_at)",
            """CREATE TABLE signing_keys (
                kid TEXT PRIMARY KEY,
                private_key_enc TEXT NOT NULL,
                status TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                retired_at DOUBLE PRECISION)""",
        ],
    ),
]


MIGRATIONS.append(
    (
        2,
        "audit store",
        [
            """CREATE TABLE audit_records (
                chain_id TEXT NOT NULL,
                seq BIGINT NOT NULL,
                record_id TEXT NOT NULL,
                ts TEXT NOT NULL,
                actor TEXT NOT NULL,
                action TEXT NOT NULL,
                resource TEXT NOT NULL,
                outcome TEXT NOT NULL,
                tenant_id TEXT NOT NULL,
                canonical TEXT NOT NULL,
                record_hash TEXT NOT NULL,
                previous_hash TEXT NOT NULL,
                received_at DOUBLE PRECISION NOT NULL,
                PRIMARY KEY (chain_id, seq))""",
            "CREATE INDEX audit_records_actor ON audit_records(actor)",
            "CREATE INDEX audit_records_ts ON audit_records(ts)",
            """CREATE TABLE audit_checkpoints (
                id {serial},
                chain_id TEXT NOT NULL,
                tree_size BIGINT NOT NULL,
                root_hash TEXT NOT NULL,
                note TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL)""",
            "CREATE INDEX audit_checkpoints_chain ON audit_checkpoints(chain_id, tree_size)",
            """CREATE TABLE audit_alerts (
                id {serial},
                chain_id TEXT NOT NULL,
                seq BIGINT NOT NULL,
                reason TEXT NOT NULL,
                detail TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL)""",
            """CREATE TABLE audit_sink_positions (
                sink TEXT NOT NULL,
                chain_id TEXT NOT NULL,
                seq BIGINT NOT NULL,
                PRIMARY KEY (sink, chain_id))""",
        ],
    )
)

MIGRATIONS.append(
    (
        3,
        "audit retention",
        [
            "ALTER TABLE audit_records ADD COLUMN pruned INTEGER NOT NULL DEFAULT 0",
            """CREATE TABLE audit_retention (
                chain_id TEXT PRIMARY KEY,
                pruned_through BIGINT NOT NULL,
                last_hash TEXT NOT NULL,
                note TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL)""",
        ],
    )
)

MIGRATIONS.append(
    (
        4,
        "sidecar credentials",
        [
            """CREATE TABLE sidecar_credentials (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                chains TEXT NOT NULL,
                prefixes TEXT NOT NULL,
                secret_hash TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                revoked_at DOUBLE PRECISION)""",
        ],
    )
)

MIGRATIONS.append(
    (
        5,
        "replicas: key activation time, shared rate limits",
        [
            # NULL for keys made before: they were active from the moment they were added
            "ALTER TABLE signing_keys ADD COLUMN activates_at DOUBLE PRECISION",
            """CREATE TABLE rate_buckets (
                bucket TEXT PRIMARY KEY,
                tokens DOUBLE PRECISION NOT NULL,
                updated DOUBLE PRECISION NOT NULL,
                allowed INTEGER NOT NULL)""",
        ],
    )
)

MIGRATIONS.append(
    (
        6,
        "signing key algorithm",
        [
            # each key keeps the algorithm it was made for; every key stored before this was RS256
            "ALTER TABLE signing_keys ADD COLUMN alg TEXT NOT NULL DEFAULT 'RS256'",
        ],
    )
)


async def migrate(db: Database) -> list[int]:
    """Apply pending migrations; return the versions applied now. A database that refuses them (a role that may not
    create tables, a read-only file) is StoreUnavailable naming the statement's error, not a stack trace."""
    try:
        return await _migrate(db)
    except DATABASE_ERRORS as exc:
        raise StoreUnavailable(f"cannot apply the schema migrations: {exc}") from None


async def _migrate(db: Database) -> list[int]:
    async with db.transaction() as tx:
        await tx.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
            "name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
        )
    applied: list[int] = []
    for version, name, statements in MIGRATIONS:
        async with db.transaction() as tx:
            await tx.serialize("coresdk-migrations")
            if await tx.fetchrow("SELECT version FROM schema_migrations WHERE version = $1", version):
                continue
            for statement in statements:
                await tx.execute(statement.replace("{serial}", _SERIAL[db.dialect]))
            await tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
                version,
                name,
                time.time(),
            )
            applied.append(version)
    return applied
