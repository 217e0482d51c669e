"""The control plane's signing keys (RS256, PS256 or ES256) and the JWKS that publishes their public halves.

Each key carries its own algorithm. RS256 and PS256 use the same kind of RSA key, so the algorithm cannot be read
off the key material: it is stored beside the key, and a key never changes algorithm after it was made. Changing
CORESDK_SIGNING_ALG therefore only decides what the next key (a rotation, a new initial key) is; tokens an older
key signed keep verifying against the JWKS entry that key has always had.

In development the key is generated into the data directory on first start (mode 0600); in production it must be
provided (CORESDK_SIGNING_KEY_PATH) and is never generated silently. The kid is the RFC 7638 thumbprint, so a
kid always names exactly one key.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from coresdk.config.controlplane import SIGNING_ALGS
from coresdk.errors import ConfigError
from coresdk.jose.b64 import b64url_encode
from coresdk.jose.jwk import load_jwk

DEFAULT_ALG = "RS256"  # every key stored before keys carried an algorithm was RS256
ROTATED_RSA_BITS = 3072

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


class KeyAlgMismatch(ValueError):
    """A private key that cannot sign with the algorithm asked for (an EC key for PS256, a P-384 key for ES256)."""


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _int_b64(n: int, length: int | None = None) -> str:
    return b64url_encode(n.to_bytes(length or (n.bit_length() + 7) // 8, "big"))


def _public_members(key: PrivateKey) -> dict[str, str]:
    """The RFC 7638 required members of the public key (the thumbprint input, and the JWKS entry's core)."""
    if isinstance(key, rsa.RSAPrivateKey):
        numbers = key.public_key().public_numbers()
        return {"kty": "RSA", "n": _int_b64(numbers.n), "e": _int_b64(numbers.e)}
    point = key.public_key().public_numbers()
    return {"kty": "EC", "crv": "P-256", "x": _int_b64(point.x, 32), "y": _int_b64(point.y, 32)}


def check_key_for_alg(key: object, alg: str) -> PrivateKey:
    """The key, if it can sign `alg` as the sidecar will accept it; KeyAlgMismatch saying why otherwise."""
    if alg not in SIGNING_ALGS:
        raise KeyAlgMismatch(f"unknown signing algorithm {alg!r} (one of {', '.join(SIGNING_ALGS)})")
    if alg == "ES256":
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
            raise KeyAlgMismatch("ES256 needs an EC private key on P-256")
        return key
    if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < 2048:
        raise KeyAlgMismatch(f"{alg} needs an RSA private key of at least 2048 bits")
    return key


@dataclass(frozen=True)
class SigningKey:
    private_key: PrivateKey = field(repr=False)
    kid: str
    alg: str = DEFAULT_ALG

    @classmethod
    def from_private_key(cls, key: PrivateKey, alg: str = DEFAULT_ALG) -> SigningKey:
        checked = check_key_for_alg(key, alg)
        return cls(private_key=checked, kid=load_jwk(_public_members(checked)).thumbprint, alg=alg)

    @classmethod
    def generate(cls, alg: str) -> SigningKey:
        """A fresh key for `alg`: RSA-3072 for RS256 and PS256, P-256 for ES256."""
        if alg == "ES256":
            return cls.from_private_key(ec.generate_private_key(ec.SECP256R1()), alg)
        return cls.from_private_key(rsa.generate_private_key(public_exponent=65537, key_size=ROTATED_RSA_BITS), alg)

    @cached_property
    def jws_header(self) -> bytes:
        """The encoded protected header of every token this key signs (RFC 9068 typ), made once per key."""
        header = json.dumps({"alg": self.alg, "kid": self.kid, "typ": "at+jwt"}, separators=(",", ":"), sort_keys=True)
        return _b64(header.encode())

    def sign_jws(self, payload: bytes) -> str:
        """A compact JWS over `payload` (the claims' JSON), as PyJWT would make it, without its per-call work
        (header building and validation, algorithm lookup, key preparation): only the signature is left."""
        signing_input = self.signing_input(payload)
        return self.compact(signing_input, self.signature(signing_input))

    def signing_input(self, payload: bytes) -> bytes:
        """The JWS signing input: the encoded header and payload (RFC 7515 §5.1)."""
        return self.jws_header + b"." + _b64(payload)

    def signature(self, signing_input: bytes) -> bytes:
        """The JWS signature of the key's algorithm over signing_input (what a signer process makes)."""
        key = self.private_key
        if isinstance(key, ec.EllipticCurvePrivateKey):  # ES256: JWS wants r || s, 32 bytes each (RFC 7518 §3.4)
            r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")
        if self.alg == "PS256":  # RFC 7518 §3.5: MGF1 with SHA-256, salt as long as the hash
            return key.sign(signing_input, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256())
        return key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())

    @staticmethod
    def compact(signing_input: bytes, signature: bytes) -> str:
        return (signing_input + b"." + _b64(signature)).decode("ascii")

    def pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def public_jwk(self) -> dict[str, Any]:
        return {**_public_members(self.private_key), "use": "sig", "alg": self.alg, "kid": self.kid}


def load_pem_key(pem: bytes, alg: str) -> SigningKey:
    """A stored key (already authenticated by its seal) back into a SigningKey of its recorded algorithm."""
    private = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(private, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise KeyAlgMismatch("stored signing key is neither RSA nor EC")
    return SigningKey.from_private_key(private, alg)


def load_signing_key(path: Path, generate_if_missing: bool, alg: str = DEFAULT_ALG) -> SigningKey:
    """The initial key file for CORESDK_SIGNING_ALG; a file that cannot sign that algorithm is a ConfigError."""
    variable = "CORESDK_SIGNING_KEY_PATH"
    if not path.exists():
        if not generate_if_missing:
            raise ConfigError(variable, f"file not found: {path}")
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(SigningKey.generate(alg).pem())
    try:
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError, OSError) as exc:
        raise ConfigError(variable, f"cannot load a PEM private key from {path}: {exc}") from None
    try:
        return SigningKey.from_private_key(check_key_for_alg(loaded, alg), alg)
    except KeyAlgMismatch as exc:
        raise ConfigError(variable, f"{exc} (CORESDK_SIGNING_ALG={alg}); {path} holds another kind of key") from None


def jwks_document(keys: list[SigningKey]) -> dict[str, Any]:
    return {"keys": [k.public_jwk() for k in keys]}
