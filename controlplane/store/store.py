"""The control plane's storage interface: every operation is one transaction on either backend.

The rules that must never race — consuming an authorization code, rotating a refresh token, detecting replay and
revoking a family — are compare-and-set updates (`... WHERE used_at IS NULL`) inside a transaction, never a read
followed by a separate write.
"""

from __future__ import annotations

import asyncio
import enum
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from controlplane.store.audit import append_own
from controlplane.store.db import Database, Tx
from controlplane.store.models import (
    AccessRecord,
    AuthCode,
    ClientSecret,
    OAuthApp,
    RefreshRecord,
    TokenEvent,
    TokenFamily,
    User,
    dump_list,
    load_list,
)
from coresdk.masking.engine import Masker

_MASKER = Masker(None)  # detectors and the default (replace) policy: no key needed, nothing reversible


class Rotation(enum.Enum):
    ROTATED = "rotated"
    GRACE = "grace"  # concurrent retry inside the grace window: same successor pair
    REPLAY = "replay"  # an already-used token: the family is now revoked
    INVALID = "invalid"  # unknown, revoked family, wrong client, expired


@dataclass(frozen=True)
class RotationResult:
    outcome: Rotation
    family: TokenFamily | None = None
    blob: str | None = None
    reason: str = ""


# Builds the successor (refresh record, access record, encrypted response blob) for a family at time now.
SuccessorFactory = Callable[[TokenFamily, float], tuple[RefreshRecord, AccessRecord, str]]


async def _event(
    tx: Tx,
    type_: str,
    now: float,
    *,
    client_id: str = "",
    subject: str = "",
    family_id: str = "",
    ip: str = "",
    detail: dict[str, Any] | None = None,
    admin: bool = False,
    resource: str = "",
) -> None:
    """One token event: a row of token_events and a record of the control plane's own audit chain, in tx.

    admin=True marks an action taken with the admin token (actor "admin", action "admin.<type>"). The chain's
    metadata goes through the masking detectors, like every record a sidecar appends: a username typed into the
    sign-in form may be an e-mail address, and it must not be hashed into the chain as typed.
    """
    metadata, _ = _MASKER.mask_json({"subject": subject, **(detail or {})})
    await append_own(
        tx,
        {
            "actor": "admin" if admin else client_id or "controlplane",
            "action": f"admin.{type_}" if admin else f"token.{type_}",
            "resource": resource or (f"family/{family_id}" if family_id else f"client/{client_id}"),
            "outcome": "alert" if type_ in ("refresh_replay", "code_replay", "login_failed") else "success",
            "ip": ip,
            "reason": str((detail or {}).get("reason", "")),
            "metadata": metadata,
        },
    )
    await tx.execute(
        "INSERT INTO token_events (type, client_id, subject, family_id, ip, detail, created_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7)",
        type_,
        client_id,
        subject,
        family_id,
        ip,
        json.dumps(detail or {}, sort_keys=True),
        now,
    )


async def _app_event(tx: Tx, type_: str, app: OAuthApp, now: float, ip: str, detail: dict[str, Any]) -> None:
    """An admin action on an app (created, updated, scopes narrowed, secret rotated, deleted)."""
    await _event(
        tx, type_, now, client_id=app.client_id, ip=ip, admin=True, resource=f"app/{app.client_id}", detail=detail
    )


async def _insert_access(tx: Tx, a: AccessRecord) -> None:
    await tx.execute(
        "INSERT INTO access_tokens (jti, family_id, client_id, subject, scopes, issued_at, expires_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7)",
        a.jti,
        a.family_id,
        a.client_id,
        a.subject,
        dump_list(a.scopes),
        a.issued_at,
        a.expires_at,
    )


async def _insert_refresh(tx: Tx, r: RefreshRecord) -> None:
    await tx.execute(
        "INSERT INTO refresh_tokens (token_hash, family_id, created_at, idle_expires_at) VALUES ($1, $2, $3, $4)",
        r.token_hash,
        r.family_id,
        r.created_at,
        r.idle_expires_at,
    )


async def _revoke_access_rows(tx: Tx, rows: list[dict[str, Any]] | list[Any], now: float) -> list[str]:
    jtis = []
    for row in rows:
        await tx.execute(
            "UPDATE access_tokens SET revoked_at = $1 WHERE jti = $2 AND revoked_at IS NULL", now, row["jti"]
        )
        await tx.execute(
            "INSERT INTO revocations (jti, expires_at, revoked_at) VALUES ($1, $2, $3)",
            row["jti"],
            row["expires_at"],
            now,
        )
        jtis.append(str(row["jti"]))
    return jtis


async def _revoke_family(tx: Tx, family_id: str, reason: str, now: float) -> list[str]:
    await tx.serialize("coresdk-revocations")
    await tx.execute(
        "UPDATE token_families SET revoked_at = $1, revoked_reason = $2 WHERE id = $3 AND revoked_at IS NULL",
        now,
        reason,
        family_id,
    )
    rows = await tx.fetch(
        "SELECT jti, expires_at FROM access_tokens WHERE family_id = $1 AND revoked_at IS NULL AND expires_at > $2",
        family_id,
        now,
    )
    return await _revoke_access_rows(tx, rows, now)


async def _withdraw_scopes(tx: Tx, app: OAuthApp, removed: tuple[str, ...], now: float, ip: str) -> None:
    """Take withdrawn scopes out of every live grant of the app, so none outlives the PATCH by a refresh or a TTL."""
    await tx.serialize("coresdk-revocations")
    narrowed = revoked = 0
    families = await tx.fetch(
        "SELECT id, scopes FROM token_families WHERE client_id = $1 AND revoked_at IS NULL", app.client_id
    )
    for fam in families:
        granted = load_list(fam["scopes"])
        if not any(s in removed for s in granted):
            continue
        remaining = [s for s in granted if s in app.scopes]
        if remaining:
            await tx.execute("UPDATE token_families SET scopes = $1 WHERE id = $2", dump_list(remaining), fam["id"])
            narrowed += 1
        else:
            jtis = await _revoke_family(tx, fam["id"], "scopes_withdrawn", now)
            await _event(
                tx,
                "revoked",
                now,
                client_id=app.client_id,
                family_id=fam["id"],
                ip=ip,
                detail={"reason": "scopes_withdrawn", "access_tokens": len(jtis)},
            )
            revoked += 1
    rows = await tx.fetch(
        "SELECT jti, expires_at, scopes FROM access_tokens WHERE client_id = $1 AND revoked_at IS NULL AND expires_at > $2",
        app.client_id,
        now,
    )
    holding = [r for r in rows if any(s in removed for s in load_list(r["scopes"]))]
    jtis = await _revoke_access_rows(tx, holding, now)
    await _app_event(
        tx,
        "app_scopes_narrowed",
        app,
        now,
        ip,
        {
            "removed": list(removed),
            "families_narrowed": narrowed,
            "families_revoked": revoked,
            "access_tokens_revoked": len(jtis),
        },
    )


class _GroupCommit:
    """Concurrent access-token records share one transaction (one fsync); each caller returns only after commit."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._pending: list[tuple[AccessRecord, str, str, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def submit(self, access: AccessRecord, ip: str, grant_type: str) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((access, ip, grant_type, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        await future

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                async with self._db.transaction() as tx:
                    for access, ip, grant_type, _ in batch:
                        await _insert_access(tx, access)
                        await _event(
                            tx,
                            "issued",
                            access.issued_at,
                            client_id=access.client_id,
                            subject=access.subject,
                            ip=ip,
                            detail={"grant_type": grant_type, "jti": access.jti},
                        )
            except Exception as exc:  # every waiter learns the batch failed; nothing was acknowledged
                for *_, future in batch:
                    if not future.done():
                        future.set_exception(exc)
            else:
                for *_, future in batch:
                    if not future.done():
                        future.set_result(None)


class Store:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._access_commits = _GroupCommit(db)

    # --- apps -----------------------------------------------------------------------------------------------

    async def insert_app(self, app: OAuthApp, secret: ClientSecret | None, now: float, ip: str = "") -> None:
        async with self.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO oauth_apps (id, client_id, name, client_type, scopes, redirect_uris, grant_types, "
                "refresh_in_cookie, tenant_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                app.id,
                app.client_id,
                app.name,
                app.client_type,
                dump_list(app.scopes),
                dump_list(app.redirect_uris),
                dump_list(app.grant_types),
                int(app.refresh_in_cookie),
                app.tenant_id,
                app.created_at,
                app.updated_at,
            )
            if secret is not None:
                await tx.execute(
                    "INSERT INTO client_secrets (id, app_id, secret_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
                    secret.id,
                    secret.app_id,
                    secret.secret_hash,
                    secret.created_at,
                    secret.expires_at,
                )
            await _app_event(
                tx,
                "app_created",
                app,
                now,
                ip,
                {"name": app.name, "client_type": app.client_type, "scopes": list(app.scopes)},
            )

    async def update_app(self, app: OAuthApp, changed: tuple[str, ...], now: float, ip: str = "") -> None:
        """Apply an admin PATCH; withdrawn scopes are withdrawn from every grant the app holds, in the same step.

        Families keep only the scopes the app still has (a family left with none is revoked), and live access
        tokens carrying a withdrawn scope are revoked (they reach sidecars through the revocation feed).
        """
        async with self.db.transaction() as tx:
            row = await tx.fetchrow("SELECT scopes FROM oauth_apps WHERE id = $1", app.id)
            before = load_list(row["scopes"]) if row else ()
            await tx.execute(
                "UPDATE oauth_apps SET name = $1, scopes = $2, redirect_uris = $3, grant_types = $4, "
                "refresh_in_cookie = $5, tenant_id = $6, updated_at = $7 WHERE id = $8",
                app.name,
                dump_list(app.scopes),
                dump_list(app.redirect_uris),
                dump_list(app.grant_types),
                int(app.refresh_in_cookie),
                app.tenant_id,
                app.updated_at,
                app.id,
            )
            removed = tuple(s for s in before if s not in app.scopes)
            added = tuple(s for s in app.scopes if s not in before)
            await _app_event(
                tx,
                "app_updated",
                app,
                now,
                ip,
                {
                    "fields": list(changed),
                    "scopes": list(app.scopes),
                    "added": list(added),
                    "removed": list(removed),
                },
            )
            if removed:
                await _withdraw_scopes(tx, app, removed, now, ip)

    async def app_by_id(self, app_id: str) -> OAuthApp | None:
        async with self.db.transaction() as tx:
            row = await tx.fetchrow("SELECT * FROM oauth_apps WHERE id = $1", app_id)
        return OAuthApp.from_row(row) if row else None

    async def app_by_client_id(self, client_id: str) -> OAuthApp | None:
        async with self.db.transaction() as tx:
            row = await tx.fetchrow("SELECT * FROM oauth_apps WHERE client_id = $1", client_id)
        return OAuthApp.from_row(row) if row else None

    async def list_apps(self) -> list[OAuthApp]:
        async with self.db.transaction() as tx:
            rows = await tx.fetch("SELECT * FROM oauth_apps ORDER BY created_at")
        return [OAuthApp.from_row(r) for r in rows]

    async def delete_app(self, app: OAuthApp, now: float, ip: str = "") -> None:
        """Delete the app and revoke every token it holds."""
        async with self.db.transaction() as tx:
            families = await tx.fetch(
                "SELECT id FROM token_families WHERE client_id = $1 AND revoked_at IS NULL", app.client_id
            )
            for fam in families:
                await _revoke_family(tx, fam["id"], "app_deleted", now)
            rows = await tx.fetch(
                "SELECT jti, expires_at FROM access_tokens WHERE client_id = $1 AND revoked_at IS NULL AND expires_at > $2",
                app.client_id,
                now,
            )
            await _revoke_access_rows(tx, rows, now)
            await tx.execute("DELETE FROM client_secrets WHERE app_id = $1", app.id)
            await tx.execute("DELETE FROM oauth_apps WHERE id = $1", app.id)
            await _app_event(
                tx,
                "app_deleted",
                app,
                now,
                ip,
                {"families_revoked": len(families)},
            )

    async def client_with_secrets(self, client_id: str) -> tuple[OAuthApp, list[ClientSecret]] | None:
        """The app and its secrets in one transaction (the hot path of client authentication)."""
        async with self.db.transaction() as tx:
            row = await tx.fetchrow("SELECT * FROM oauth_apps WHERE client_id = $1", client_id)
            if row is None:
                return None
            rows = await tx.fetch("SELECT * FROM client_secrets WHERE app_id = $1 ORDER BY created_at", row["id"])
        return OAuthApp.from_row(row), [ClientSecret.from_row(r) for r in rows]

    async def secrets_for(self, app_id: str) -> list[ClientSecret]:
        async with self.db.transaction() as tx:
            rows = await tx.fetch("SELECT * FROM client_secrets WHERE app_id = $1 ORDER BY created_at", app_id)
        return [ClientSecret.from_row(r) for r in rows]

    async def rotate_secret(
        self, app: OAuthApp, new: ClientSecret, previous_expire_at: float, now: float, ip: str = ""
    ) -> None:
        """Add a new secret; secrets still without an expiry now expire at previous_expire_at (grace)."""
        async with self.db.transaction() as tx:
            await tx.execute(
                "UPDATE client_secrets SET expires_at = $1 WHERE app_id = $2 AND (expires_at IS NULL OR expires_at > $3)",
                previous_expire_at,
                app.id,
                previous_expire_at,
            )
            await tx.execute(
                "INSERT INTO client_secrets (id, app_id, secret_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
                new.id,
                new.app_id,
                new.secret_hash,
                new.created_at,
                new.expires_at,
            )
            await _app_event(
                tx,
                "secret_rotated",
                app,
                now,
                ip,
                {"previous_expire_at": previous_expire_at, "secret_id": new.id},
            )

    # --- users ----------------------------------------------------------------------------------------------

    async def insert_user(self, user: User, ip: str = "") -> None:
        async with self.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO users (id, subject, tenant_id, roles, password_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
                user.id,
                user.subject,
                user.tenant_id,
                dump_list(user.roles),
                user.password_hash,
                user.created_at,
            )
            await _event(
                tx,
                "user_created",
                user.created_at,
                subject=user.subject,
                ip=ip,
                admin=True,
                resource=f"user/{user.id}",
                detail={"tenant_id": user.tenant_id, "roles": list(user.roles)},
            )

    async def user_by_subject(self, subject: str) -> User | None:
        async with self.db.transaction() as tx:
            row = await tx.fetchrow("SELECT * FROM users WHERE subject = $1", subject)
        return User.from_row(row) if row else None

    async def user_by_id(self, user_id: str) -> User | None:
        async with self.db.transaction() as tx:
            row = await tx.fetchrow("SELECT * FROM users WHERE id = $1", user_id)
        return User.from_row(row) if row else None

    async def list_users(self) -> list[User]:
        async with self.db.transaction() as tx:
            rows = await tx.fetch("SELECT * FROM users ORDER BY created_at")
        return [User.from_row(r) for r in rows]

    async def delete_user(self, user: User, now: float, ip: str = "") -> None:
        """Delete the user and everything it could still redeem: pending codes are burned, families revoked.

        Serialised with code redemption on the subject, so a code being exchanged at this moment either finds the
        user gone or its new family is seen (and revoked) here.
        """
        async with self.db.transaction() as tx:
            await tx.serialize(f"user:{user.subject}")
            burned = await tx.execute("DELETE FROM auth_codes WHERE subject = $1 AND used_at IS NULL", user.subject)
            families = await tx.fetch(
                "SELECT id, client_id FROM token_families WHERE subject = $1 AND revoked_at IS NULL", user.subject
            )
            for fam in families:
                jtis = await _revoke_family(tx, fam["id"], "user_deleted", now)
                await _event(
                    tx,
                    "revoked",
                    now,
                    client_id=fam["client_id"],
                    subject=user.subject,
                    family_id=fam["id"],
                    ip=ip,
                    detail={"reason": "user_deleted", "access_tokens": len(jtis)},
                )
            await tx.execute("DELETE FROM users WHERE id = $1", user.id)
            await _event(
                tx,
                "user_deleted",
                now,
                subject=user.subject,
                ip=ip,
                admin=True,
                resource=f"user/{user.id}",
                detail={"codes_burned": burned, "families_revoked": len(families)},
            )

    # --- authorization codes --------------------------------------------------------------------------------

    async def insert_code(self, code: AuthCode) -> None:
        async with self.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO auth_codes (code_hash, client_id, redirect_uri, code_challenge, subject, tenant_id, roles, "
                "scopes, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                code.code_hash,
                code.client_id,
                code.redirect_uri,
                code.code_challenge,
                code.subject,
                code.tenant_id,
                dump_list(code.roles),
                dump_list(code.scopes),
                code.created_at,
                code.expires_at,
            )

    async def redeem_code(
        self,
        code_hash: str,
        now: float,
        accept: Callable[[AuthCode], str | None],
        issue: Callable[[AuthCode], tuple[TokenFamily, RefreshRecord | None, AccessRecord]],
        ip: str = "",
    ) -> tuple[str, AuthCode | None]:
        """Consume a code exactly once and issue its tokens in the same transaction.

        Returns ("issued", code), ("replay", code) — the code was used before, its tokens are now revoked —,
        ("unknown", None), or (reason, code) when accept() refuses it (the code is then burned too).
        """
        async with self.db.transaction() as tx:
            row = await tx.fetchrow(
                "UPDATE auth_codes SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL RETURNING *",
                now,
                code_hash,
            )
            if row is None:
                old = await tx.fetchrow("SELECT * FROM auth_codes WHERE code_hash = $1", code_hash)
                if old is None:
                    return "unknown", None
                code = AuthCode.from_row(old)
                if code.family_id:
                    await _revoke_family(tx, code.family_id, "code_replay", now)
                await _event(
                    tx,
                    "code_replay",
                    now,
                    client_id=code.client_id,
                    subject=code.subject,
                    family_id=code.family_id or "",
                    ip=ip,
                )
                return "replay", code
            code = AuthCode.from_row(row)
            refusal = accept(code)
            if refusal is not None:
                return refusal, code
            await tx.serialize(f"user:{code.subject}")
            if await tx.fetchrow("SELECT id FROM users WHERE subject = $1", code.subject) is None:
                return "the user of this code no longer exists", code
            family, refresh, access = issue(code)
            await tx.execute(
                "INSERT INTO token_families (id, client_id, subject, tenant_id, roles, scopes, created_at, "
                "absolute_expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                family.id,
                family.client_id,
                family.subject,
                family.tenant_id,
                dump_list(family.roles),
                dump_list(family.scopes),
                family.created_at,
                family.absolute_expires_at,
            )
            if refresh is not None:
                await _insert_refresh(tx, refresh)
            await _insert_access(tx, access)
            await tx.execute("UPDATE auth_codes SET family_id = $1 WHERE code_hash = $2", family.id, code_hash)
            await _event(
                tx,
                "issued",
                now,
                client_id=code.client_id,
                subject=code.subject,
                family_id=family.id,
                ip=ip,
                detail={"grant_type": "authorization_code", "jti": access.jti},
            )
            return "issued", code

    # --- tokens ---------------------------------------------------------------------------------------------

    async def record_access(self, access: AccessRecord, ip: str, grant_type: str) -> None:
        """Durably record an access token issued without a family (client_credentials), group-committed."""
        await self._access_commits.submit(access, ip, grant_type)

    async def rotate_refresh(
        self, token_hash: str, client_id: str, now: float, grace_seconds: int, successor: SuccessorFactory, ip: str = ""
    ) -> RotationResult:
        async with self.db.transaction() as tx:
            for _ in range(2):
                row = await tx.fetchrow("SELECT * FROM refresh_tokens WHERE token_hash = $1", token_hash)
                if row is None:
                    return RotationResult(Rotation.INVALID, reason="unknown refresh token")
                record = RefreshRecord.from_row(row)
                frow = await tx.fetchrow("SELECT * FROM token_families WHERE id = $1", record.family_id)
                assert frow is not None
                if tx.dialect != "sqlite":  # SQLite runs one writer at a time already
                    # serialised with user deletion, then re-read: a family revoked a moment ago is seen as revoked
                    await tx.serialize(f"user:{frow['subject']}")
                    frow = await tx.fetchrow("SELECT * FROM token_families WHERE id = $1", record.family_id)
                    assert frow is not None
                family = TokenFamily.from_row(frow)
                if family.client_id != client_id:
                    return RotationResult(Rotation.INVALID, reason="refresh token was issued to another client")
                if family.revoked_at is not None:
                    return RotationResult(Rotation.INVALID, family, reason="refresh token has been revoked")
                if record.used_at is not None:
                    if grace_seconds and now - record.used_at <= grace_seconds and record.successor_blob:
                        return RotationResult(Rotation.GRACE, family, record.successor_blob)
                    await _revoke_family(tx, family.id, "refresh_replay", now)
                    await _event(
                        tx,
                        "refresh_replay",
                        now,
                        client_id=client_id,
                        subject=family.subject,
                        family_id=family.id,
                        ip=ip,
                    )
                    return RotationResult(Rotation.REPLAY, family, reason="refresh token reuse detected")
                if now >= record.idle_expires_at or now >= family.absolute_expires_at:
                    return RotationResult(Rotation.INVALID, family, reason="refresh token has expired")
                new_refresh, access, blob = successor(family, now)
                won = await tx.execute(
                    "UPDATE refresh_tokens SET used_at = $1, successor_blob = $2 WHERE token_hash = $3 AND used_at IS NULL",
                    now,
                    blob if grace_seconds else None,
                    token_hash,
                )
                if won != 1:
                    continue  # lost a race to a concurrent rotation: re-read and judge as a reuse
                await _insert_refresh(tx, new_refresh)
                await _insert_access(tx, access)
                await _event(
                    tx,
                    "refreshed",
                    now,
                    client_id=client_id,
                    subject=family.subject,
                    family_id=family.id,
                    ip=ip,
                    detail={"jti": access.jti},
                )
                return RotationResult(Rotation.ROTATED, family, blob)
            return RotationResult(Rotation.INVALID, reason="concurrent rotation")

    async def refresh_lookup(self, token_hash: str) -> tuple[RefreshRecord, TokenFamily] | None:
        async with self.db.transaction() as tx:
            row = await tx.fetchrow("SELECT * FROM refresh_tokens WHERE token_hash = $1", token_hash)
            if row is None:
                return None
            frow = await tx.fetchrow("SELECT * FROM token_families WHERE id = $1", row["family_id"])
        assert frow is not None
        return RefreshRecord.from_row(row), TokenFamily.from_row(frow)

    async def access_lookup(self, jti: str) -> AccessRecord | None:
        async with self.db.transaction() as tx:
            row = await tx.fetchrow("SELECT * FROM access_tokens WHERE jti = $1", jti)
        return AccessRecord.from_row(row) if row else None

    async def revoke_family(self, family_id: str, reason: str, now: float, client_id: str, ip: str = "") -> list[str]:
        async with self.db.transaction() as tx:
            jtis = await _revoke_family(tx, family_id, reason, now)
            await _event(
                tx,
                "revoked",
                now,
                client_id=client_id,
                family_id=family_id,
                ip=ip,
                detail={"reason": reason, "access_tokens": len(jtis)},
            )
            return jtis

    async def revoke_access(self, access: AccessRecord, now: float, ip: str = "") -> None:
        async with self.db.transaction() as tx:
            await tx.serialize("coresdk-revocations")
            rows = await tx.fetch(
                "SELECT jti, expires_at FROM access_tokens WHERE jti = $1 AND revoked_at IS NULL", access.jti
            )
            await _revoke_access_rows(tx, rows, now)
            await _event(
                tx,
                "revoked",
                now,
                client_id=access.client_id,
                subject=access.subject,
                family_id=access.family_id or "",
                ip=ip,
                detail={"jti": access.jti},
            )

    async def revocations_since(self, since: int, now: float, limit: int = 1000) -> list[dict[str, Any]]:
        async with self.db.transaction() as tx:
            rows = await tx.fetch(
                "SELECT seq, jti, expires_at FROM revocations WHERE seq > $1 AND expires_at > $2 ORDER BY seq LIMIT $3",
                since,
                now,
                limit,
            )
        return [{"seq": int(r["seq"]), "jti": r["jti"], "exp": int(r["expires_at"])} for r in rows]

    async def max_revocation_seq(self) -> int:
        async with self.db.transaction() as tx:
            row = await tx.fetchrow("SELECT COALESCE(MAX(seq), 0) AS m FROM revocations")
        return int(row["m"]) if row else 0

    # --- events ---------------------------------------------------------------------------------------------

    async def add_event(self, type_: str, now: float, **fields: Any) -> None:
        async with self.db.transaction() as tx:
            await _event(tx, type_, now, **fields)

    async def list_events(
        self, type_: str | None, client_id: str | None, since: float | None, until: float | None, limit: int
    ) -> list[TokenEvent]:
        clauses, args = [], []
        for column, op, value in (
            ("type", "=", type_),
            ("client_id", "=", client_id),
            ("created_at", ">=", since),
            ("created_at", "<", until),
        ):
            if value is not None:
                args.append(value)
                clauses.append(f"{column} {op} ${len(args)}")
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        args.append(limit)
        async with self.db.transaction() as tx:
            rows = await tx.fetch(f"SELECT * FROM token_events {where} ORDER BY id LIMIT ${len(args)}", *args)  # noqa: S608
        return [TokenEvent.from_row(r) for r in rows]

    # --- signing keys ---------------------------------------------------------------------------------------

    async def signing_keys(self) -> list[dict[str, Any]]:
        async with self.db.transaction() as tx:
            return [dict(r) for r in await tx.fetch("SELECT * FROM signing_keys ORDER BY created_at")]

    async def add_signing_key(self, kid: str, private_key_enc: str, now: float, make_active: bool) -> None:
        async with self.db.transaction() as tx:
            await tx.serialize("coresdk-signing-keys")
            if make_active:
                await tx.execute(
                    "UPDATE signing_keys SET status = 'retired', retired_at = $1 WHERE status = 'active'", now
                )
            await tx.execute(
                "INSERT INTO signing_keys (kid, private_key_enc, status, created_at) VALUES ($1, $2, $3, $4)",
                kid,
                private_key_enc,
                "active" if make_active else "retired",
                now,
            )
            await _event(tx, "signing_key_added", now, detail={"kid": kid, "active": make_active})
