"""Keys derived from the server secret, and the hashing/encryption that keeps credentials out of the store.

Client secrets, refresh tokens and authorization codes are stored only as HMAC-SHA256 under a server pepper: a
stolen database yields nothing usable. The few values that must be recoverable (signing keys, the grace-window
successor response) are sealed with AES-256-GCM, bound by associated data to the row they belong to.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

CONTROLPLANE_SALT = b"coresdk-controlplane-v1"
AUDIT_SALT = b"coresdk-audit-v1"


def derive_key(secret: bytes, purpose: str, salt: bytes = CONTROLPLANE_SALT) -> bytes:
    """The one key derivation of the control plane: HKDF-SHA256, 32 bytes, one `purpose` per use.

    Every key the control plane derives from CORESDK_SERVER_SECRET comes from here, each under its own purpose, so
    no two uses share a key. The salts are fixed forever: a changed salt would change every key (stored hashes
    and sealed values would no longer match, the audit checkpoint key would change).
    """
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=purpose.encode()).derive(secret)


class SealError(Exception):
    pass


class ServerKeys:
    def __init__(self, server_secret: bytes) -> None:
        self._pepper = derive_key(server_secret, "client-secret-pepper")
        self._token_key = derive_key(server_secret, "token-hash")
        self._aead = AESGCM(derive_key(server_secret, "seal"))

    def hash_client_secret(self, secret: str) -> str:
        return hmac.new(self._pepper, secret.encode(), hashlib.sha256).hexdigest()

    def hash_token(self, token: str) -> str:
        return hmac.new(self._token_key, token.encode(), hashlib.sha256).hexdigest()

    def seal(self, plaintext: bytes, associated: str) -> str:
        nonce = os.urandom(12)
        return (
            "v1." + base64.urlsafe_b64encode(nonce + self._aead.encrypt(nonce, plaintext, associated.encode())).decode()
        )

    def open(self, sealed: str, associated: str) -> bytes:
        if not sealed.startswith("v1."):
            raise SealError("unknown sealed format")
        raw = base64.urlsafe_b64decode(sealed[3:])
        try:
            return self._aead.decrypt(raw[:12], raw[12:], associated.encode())
        except InvalidTag as exc:
            raise SealError("sealed value failed authentication") from exc


def new_token(nbytes: int = 32) -> str:
    """256-bit random value, URL-safe."""
    return secrets.token_urlsafe(nbytes)


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"
