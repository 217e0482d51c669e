"""Encrypt/Decrypt through Vault: transit envelope encryption (key versions, rotation, rewrap), or AES-256-GCM with a
data key kept in Vault KV for deployments without transit. Both bind associated data."""

from __future__ import annotations

import base64
from typing import Any

from hvac import exceptions as hvac_errors

from coresdk import reasons
from coresdk.config.sidecar import VaultSettings
from coresdk.encryption.envelope import Envelope, aesgcm_open, aesgcm_seal, decode, encode
from coresdk.errors import InvalidArgument, NotFound
from sidecar.secrets.resolver import SecretResolver
from sidecar.secrets.vault import VaultSession

MAX_PLAINTEXT = 1024 * 1024


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class Encryptor:
    def __init__(self, session: VaultSession, resolver: SecretResolver, settings: VaultSettings) -> None:
        self._session = session
        self._resolver = resolver
        self._settings = settings

    async def encrypt(self, plaintext: bytes, associated: bytes, key_name: str = "") -> tuple[str, int]:
        if len(plaintext) > MAX_PLAINTEXT:
            raise InvalidArgument(reasons.CIPHERTEXT_INVALID, f"plaintext exceeds {MAX_PLAINTEXT} bytes")
        if self._settings.encryption_mode == "aesgcm":
            key, version = await self._data_key(0)
            return aesgcm_seal(key, str(version), plaintext, associated), version
        name = key_name or self._settings.encryption_key
        mount = self._settings.transit_mount

        def run(client: Any) -> dict[str, Any]:
            result: dict[str, Any] = client.secrets.transit.encrypt_data(
                name, plaintext=_b64(plaintext), associated_data=_b64(associated), mount_point=mount
            )
            return result

        vault_ct = str((await self._session.call(run))["data"]["ciphertext"])
        return encode(Envelope("transit", name, vault_ct)), int(vault_ct.split(":")[1].lstrip("v"))

    async def encrypt_bytes(self, plaintext: bytes, associated: bytes) -> str:
        """encrypt() shaped for coresdk.encryption.envelope.encrypt_fields."""
        return (await self.encrypt(plaintext, associated))[0]

    async def decrypt(self, ciphertext: str, associated: bytes) -> bytes:
        envelope = decode(ciphertext)
        if envelope.mode == "aesgcm":
            if not envelope.key.isdigit():
                raise InvalidArgument(reasons.CIPHERTEXT_INVALID, "malformed data key version")
            key, _ = await self._data_key(int(envelope.key))
            return aesgcm_open(key, envelope, associated)
        mount = self._settings.transit_mount

        def run(client: Any) -> dict[str, Any]:
            result: dict[str, Any] = client.secrets.transit.decrypt_data(
                envelope.key, ciphertext=envelope.payload, associated_data=_b64(associated), mount_point=mount
            )
            return result

        try:
            resp = await self._session.call(run)
        except NotFound:
            raise InvalidArgument(reasons.CIPHERTEXT_INVALID, "unknown transit key") from None
        except hvac_errors.InvalidRequest:
            raise InvalidArgument(reasons.CIPHERTEXT_INVALID, "ciphertext failed authentication") from None
        return base64.b64decode(resp["data"]["plaintext"])

    async def rewrap(self, ciphertext: str, associated: bytes) -> str:
        """Re-encrypt under the newest key version; the plaintext stays inside the sidecar.

        Vault's transit rewrap endpoint does not take associated data (checked against OpenBao 2.7), so this is a
        decrypt and encrypt with the same associated data; rotated-out versions can then be retired.
        """
        envelope = decode(ciphertext)
        plaintext = await self.decrypt(ciphertext, associated)
        key_name = envelope.key if envelope.mode == "transit" else ""
        return (await self.encrypt(plaintext, associated, key_name))[0]

    async def _data_key(self, version: int) -> tuple[bytes, int]:
        secret = await self._resolver.resolve(self._settings.data_key_path.strip("/"), version, internal=True)
        try:
            key = base64.b64decode(secret.data["key"], validate=True)
        except (KeyError, ValueError):
            raise InvalidArgument(
                reasons.CIPHERTEXT_INVALID, "the data key in Vault is not base64 of 32 bytes"
            ) from None
        if len(key) != 32:
            raise InvalidArgument(reasons.CIPHERTEXT_INVALID, "the data key in Vault is not 32 bytes")
        return key, secret.version
