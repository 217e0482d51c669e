"""The control plane's RS256 signing key and the JWKS that publishes its public half.

In development the key is generated into the data directory on first start (mode 0600); in production it must be
provided (CORESDK_SIGNING_KEY_PATH) and is never generated silently. The kid is the RFC 7638 thumbprint, so a
kid always names exactly one key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from coresdk.errors import ConfigError
from coresdk.jose.b64 import b64url_encode
from coresdk.jose.jwk import load_jwk


def _int_b64(n: int) -> str:
    return b64url_encode(n.to_bytes((n.bit_length() + 7) // 8, "big"))


@dataclass(frozen=True)
class SigningKey:
    private_key: rsa.RSAPrivateKey = field(repr=False)
    kid: str

    @classmethod
    def from_private_key(cls, key: rsa.RSAPrivateKey) -> SigningKey:
        numbers = key.public_key().public_numbers()
        jwk = {"kty": "RSA", "n": _int_b64(numbers.n), "e": _int_b64(numbers.e)}
        return cls(private_key=key, kid=load_jwk(jwk).thumbprint)

    def public_jwk(self) -> dict[str, Any]:
        numbers = self.private_key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": _int_b64(numbers.n),
            "e": _int_b64(numbers.e),
        }


def load_signing_key(path: Path, generate_if_missing: bool) -> SigningKey:
    variable = "CORESDK_SIGNING_KEY_PATH"
    if not path.exists():
        if not generate_if_missing:
            raise ConfigError(variable, f"file not found: {path}")
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
    try:
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError, OSError) as exc:
        raise ConfigError(variable, f"cannot load a PEM private key from {path}: {exc}") from None
    if not isinstance(loaded, rsa.RSAPrivateKey) or loaded.key_size < 2048:
        raise ConfigError(variable, "must be an RSA private key of at least 2048 bits (RS256)")
    return SigningKey.from_private_key(loaded)


def jwks_document(keys: list[SigningKey]) -> dict[str, Any]:
    return {"keys": [k.public_jwk() for k in keys]}
