"""Records of the control plane's store. Secrets appear only as hashes or ciphertext."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from controlplane.store.db import Row


def dump_list(values: tuple[str, ...] | list[str]) -> str:
    return json.dumps(list(values))


def load_list(text: str) -> tuple[str, ...]:
    return tuple(json.loads(text))


@dataclass(frozen=True)
class OAuthApp:
    id: str
    client_id: str
    name: str
    client_type: str  # "confidential" | "public"
    scopes: tuple[str, ...]
    redirect_uris: tuple[str, ...]
    grant_types: tuple[str, ...]
    refresh_in_cookie: bool
    tenant_id: str
    created_at: float
    updated_at: float

    @property
    def confidential(self) -> bool:
        return self.client_type == "confidential"

    @classmethod
    def from_row(cls, row: Row) -> OAuthApp:
        return cls(
            id=row["id"],
            client_id=row["client_id"],
            name=row["name"],
            client_type=row["client_type"],
            scopes=load_list(row["scopes"]),
            redirect_uris=load_list(row["redirect_uris"]),
            grant_types=load_list(row["grant_types"]),
            refresh_in_cookie=bool(row["refresh_in_cookie"]),
            tenant_id=row["tenant_id"],
            created_at=float(row["created_at"]),
            updated_at=float(row["updated_at"]),
        )


@dataclass(frozen=True)
class ClientSecret:
    id: str
    app_id: str
    secret_hash: str
    created_at: float
    expires_at: float | None

    @classmethod
    def from_row(cls, row: Row) -> ClientSecret:
        exp = row["expires_at"]
        return cls(
            row["id"], row["app_id"], row["secret_hash"], float(row["created_at"]), None if exp is None else float(exp)
        )


@dataclass(frozen=True)
class User:
    id: str
    subject: str
    tenant_id: str
    roles: tuple[str, ...]
    password_hash: str
    created_at: float

    @classmethod
    def from_row(cls, row: Row) -> User:
        return cls(
            row["id"],
            row["subject"],
            row["tenant_id"],
            load_list(row["roles"]),
            row["password_hash"],
            float(row["created_at"]),
        )


@dataclass(frozen=True)
class AuthCode:
    code_hash: str
    client_id: str
    redirect_uri: str
    code_challenge: str
    subject: str
    tenant_id: str
    roles: tuple[str, ...]
    scopes: tuple[str, ...]
    created_at: float
    expires_at: float
    used_at: float | None = None
    family_id: str | None = None

    @classmethod
    def from_row(cls, row: Row) -> AuthCode:
        return cls(
            code_hash=row["code_hash"],
            client_id=row["client_id"],
            redirect_uri=row["redirect_uri"],
            code_challenge=row["code_challenge"],
            subject=row["subject"],
            tenant_id=row["tenant_id"],
            roles=load_list(row["roles"]),
            scopes=load_list(row["scopes"]),
            created_at=float(row["created_at"]),
            expires_at=float(row["expires_at"]),
            used_at=None if row["used_at"] is None else float(row["used_at"]),
            family_id=row["family_id"],
        )


@dataclass(frozen=True)
class TokenFamily:
    id: str
    client_id: str
    subject: str
    tenant_id: str
    roles: tuple[str, ...]
    scopes: tuple[str, ...]
    created_at: float
    absolute_expires_at: float
    revoked_at: float | None = None
    revoked_reason: str | None = None

    @classmethod
    def from_row(cls, row: Row) -> TokenFamily:
        return cls(
            id=row["id"],
            client_id=row["client_id"],
            subject=row["subject"],
            tenant_id=row["tenant_id"],
            roles=load_list(row["roles"]),
            scopes=load_list(row["scopes"]),
            created_at=float(row["created_at"]),
            absolute_expires_at=float(row["absolute_expires_at"]),
            revoked_at=None if row["revoked_at"] is None else float(row["revoked_at"]),
            revoked_reason=row["revoked_reason"],
        )


@dataclass(frozen=True)
class RefreshRecord:
    token_hash: str
    family_id: str
    created_at: float
    idle_expires_at: float
    used_at: float | None = None
    successor_blob: str | None = None

    @classmethod
    def from_row(cls, row: Row) -> RefreshRecord:
        return cls(
            token_hash=row["token_hash"],
            family_id=row["family_id"],
            created_at=float(row["created_at"]),
            idle_expires_at=float(row["idle_expires_at"]),
            used_at=None if row["used_at"] is None else float(row["used_at"]),
            successor_blob=row["successor_blob"],
        )


@dataclass(frozen=True)
class AccessRecord:
    jti: str
    family_id: str | None
    client_id: str
    subject: str
    scopes: tuple[str, ...]
    issued_at: float
    expires_at: float
    revoked_at: float | None = None

    @classmethod
    def from_row(cls, row: Row) -> AccessRecord:
        return cls(
            jti=row["jti"],
            family_id=row["family_id"],
            client_id=row["client_id"],
            subject=row["subject"],
            scopes=load_list(row["scopes"]),
            issued_at=float(row["issued_at"]),
            expires_at=float(row["expires_at"]),
            revoked_at=None if row["revoked_at"] is None else float(row["revoked_at"]),
        )


@dataclass(frozen=True)
class TokenEvent:
    id: int
    type: str
    client_id: str
    subject: str
    family_id: str
    ip: str
    detail: dict[str, Any]
    created_at: float

    @classmethod
    def from_row(cls, row: Row) -> TokenEvent:
        return cls(
            int(row["id"]),
            row["type"],
            row["client_id"],
            row["subject"],
            row["family_id"],
            row["ip"],
            json.loads(row["detail"]),
            float(row["created_at"]),
        )
