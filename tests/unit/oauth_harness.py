"""The control plane's OAuth rules in process: a real store (SQLite file or PostgreSQL), real keys, no server.

`Services` provides what the rules take (controlplane.oauth.services.OAuthServices); the helpers write apps,
users and codes straight through the store, the way the admin API and the authorization endpoint do.
"""

from __future__ import annotations

import dataclasses
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from controlplane.keys.manager import KeyManager
from controlplane.oauth.grants.authorization_code import CodeRedemption, redeem_code
from controlplane.oauth.issue import TokenIssuer
from controlplane.oauth.pkce import s256
from controlplane.secrets import ServerKeys, new_id, new_token
from controlplane.store.db import open_database
from controlplane.store.migrations import migrate
from controlplane.store.models import AuthCode, OAuthApp, TokenEvent, User
from controlplane.store.store import Store
from coresdk.config.controlplane import CODE_TTL, ControlPlaneConfig, load_controlplane_config

REDIRECT = "https://app.test/callback"
VERIFIER = "v" * 43 + secrets.token_urlsafe(8)


@dataclass(frozen=True)
class Services:
    config: ControlPlaneConfig
    store: Store
    server_keys: ServerKeys
    keys: KeyManager
    issuer: TokenIssuer

    def with_config(self, **changes: Any) -> Services:
        """The same store and keys under changed settings (e.g. a grace window)."""
        config = dataclasses.replace(self.config, **changes)
        return dataclasses.replace(self, config=config, issuer=TokenIssuer(config, self.keys, self.server_keys))


async def open_services(database_url: str, directory: Path) -> Services:
    directory.mkdir(parents=True, exist_ok=True)
    key_path = directory / "signing-key.pem"
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    config = load_controlplane_config(
        {
            "CORESDK_ENV": "development",
            "CORESDK_DATA_DIR": str(directory / "data"),
            "DATABASE_URL": database_url,
            "CORESDK_SIGNING_KEY_PATH": str(key_path),
        }
    )
    db = await open_database(database_url)
    await migrate(db)
    store = Store(db)
    server_keys = ServerKeys(config.server_secret)
    keys = KeyManager(store, server_keys)
    await keys.start(key_path, None)
    return Services(config, store, server_keys, keys, TokenIssuer(config, keys, server_keys))


async def make_app(
    svc: Services,
    *,
    confidential: bool = True,
    scopes: tuple[str, ...] = ("orders:read", "orders:write"),
    grant_types: tuple[str, ...] = ("authorization_code", "refresh_token", "client_credentials"),
) -> OAuthApp:
    now = time.time()
    app = OAuthApp(
        id=new_id("app"),
        client_id=new_id("cli"),
        name="test app",
        client_type="confidential" if confidential else "public",
        scopes=scopes,
        redirect_uris=(REDIRECT,),
        grant_types=grant_types,
        refresh_in_cookie=False,
        tenant_id="acme",
        created_at=now,
        updated_at=now,
    )
    async with svc.store.transaction() as tx:
        await tx.apps.insert_app(app)
    return app


async def set_app_scopes(svc: Services, app: OAuthApp, scopes: tuple[str, ...]) -> OAuthApp:
    """Change the app's row only (no withdrawal): what a grant sees when it runs against a narrowed app."""
    narrowed = dataclasses.replace(app, scopes=scopes)
    async with svc.store.transaction() as tx:
        await tx.apps.update_app(narrowed)
    return narrowed


async def make_user(svc: Services) -> User:
    user = User(new_id("usr"), f"user-{secrets.token_hex(4)}@example.test", "acme", ("viewer",), "unused", time.time())
    async with svc.store.transaction() as tx:
        await tx.users.insert_user(user)
    return user


async def make_code(
    svc: Services,
    app: OAuthApp,
    user: User,
    *,
    scopes: tuple[str, ...] | None = None,
    now: float | None = None,
) -> str:
    """A fresh authorization code for app and user, as the authorization endpoint stores it; the raw code."""
    raw = new_token()
    issued = time.time() if now is None else now
    async with svc.store.transaction() as tx:
        await tx.codes.insert_code(
            AuthCode(
                code_hash=svc.server_keys.hash_token(raw),
                client_id=app.client_id,
                redirect_uri=REDIRECT,
                code_challenge=s256(VERIFIER),
                subject=user.subject,
                tenant_id=user.tenant_id,
                roles=user.roles,
                scopes=app.scopes if scopes is None else scopes,
                created_at=issued,
                expires_at=issued + CODE_TTL,
            )
        )
    return raw


def redemption(code: str, *, redirect_uri: str = REDIRECT, verifier: str = VERIFIER) -> CodeRedemption:
    return CodeRedemption(code, redirect_uri, verifier)


async def token_pair(svc: Services, app: OAuthApp, user: User | None = None) -> dict[str, Any]:
    """A token response from a redeemed code (access and, if the app may refresh, refresh token)."""
    user = user or await make_user(svc)
    return await redeem_code(svc, app, redemption(await make_code(svc, app, user)), time.time())


async def events(svc: Services, type_: str, app: OAuthApp) -> list[TokenEvent]:
    return await svc.store.events.list_events(type_, app.client_id, None, None, 1000)


async def revoked_jtis(svc: Services) -> set[str]:
    return {str(item["jti"]) for item in await svc.store.revocations.revocations_since(0, time.time(), 100_000)}


def jti_of(svc: Services, access_token: str) -> str:
    from controlplane.oauth.tokens_lookup import access_claims

    claims = access_claims(svc, access_token)
    assert claims is not None
    return str(claims["jti"])
