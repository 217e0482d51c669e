"""Validation of JSON Web Keys before they may verify anything.

An IdP's key set is input from the network: a key is used only if it is a public RSA (≥ 2048 bits, sane exponent,
not ROCA-weak) or P-256 EC key meant for signatures. A set carrying private key material or duplicate kids is
refused whole (it signals a broken or hostile publisher); individually unusable keys (encryption keys, symmetric
keys, other curves) are skipped and reported, because real IdPs publish those beside their signing keys.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from coresdk.jose import ALLOWED_ALGS
from coresdk.jose.b64 import Base64Error, b64url_decode, b64url_encode
from coresdk.jose.roca import is_roca_vulnerable

MIN_RSA_BITS = 2048
MAX_RSA_BITS = 16384
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_ALGS_FOR_KTY = {"RSA": frozenset({"RS256", "PS256"}), "EC": frozenset({"ES256"})}

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


class KeyRejected(ValueError):
    """One key is unusable; `reason` says why (for logs and metrics, never secret)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class KeySetRejected(ValueError):
    """The whole key set is refused."""


@dataclass(frozen=True)
class VerificationKey:
    kid: str | None
    kty: str
    alg: str | None
    public_key: PublicKey = field(repr=False)
    # RFC 7638 thumbprint: identifies the key material itself, even if a publisher reuses a kid.
    thumbprint: str

    def permits(self, alg: str) -> bool:
        if alg not in _ALGS_FOR_KTY[self.kty]:
            return False
        return self.alg is None or self.alg == alg


def _member_bytes(jwk: Mapping[str, Any], name: str) -> bytes:
    value = jwk.get(name)
    if not isinstance(value, str) or not value:
        raise KeyRejected(f"missing_{name}")
    try:
        return b64url_decode(value)
    except (Base64Error, UnicodeEncodeError) as exc:
        raise KeyRejected(f"bad_{name}") from exc


def _thumbprint(members: dict[str, str]) -> str:
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return b64url_encode(hashlib.sha256(canonical).digest())


def _load_rsa(jwk: Mapping[str, Any]) -> tuple[PublicKey, str]:
    n_bytes = _member_bytes(jwk, "n")
    e_bytes = _member_bytes(jwk, "e")
    n = int.from_bytes(n_bytes, "big")
    e = int.from_bytes(e_bytes, "big")
    bits = n.bit_length()
    if bits < MIN_RSA_BITS:
        raise KeyRejected("rsa_key_too_small")
    if bits > MAX_RSA_BITS:
        raise KeyRejected("rsa_key_too_large")
    if e < 3 or e % 2 == 0 or e >= n or e.bit_length() > 64:
        raise KeyRejected("rsa_bad_exponent")
    if n % 2 == 0:
        raise KeyRejected("rsa_bad_modulus")
    if is_roca_vulnerable(n):
        raise KeyRejected("rsa_roca_weak")
    key = rsa.RSAPublicNumbers(e, n).public_key()
    tp = _thumbprint({"e": jwk["e"], "kty": "RSA", "n": jwk["n"]})
    return key, tp


def _load_ec(jwk: Mapping[str, Any]) -> tuple[PublicKey, str]:
    if jwk.get("crv") != "P-256":
        raise KeyRejected("ec_curve_not_allowed")
    x = _member_bytes(jwk, "x")
    y = _member_bytes(jwk, "y")
    if len(x) != 32 or len(y) != 32:
        raise KeyRejected("ec_bad_coordinate_length")
    try:
        key = ec.EllipticCurvePublicNumbers(
            int.from_bytes(x, "big"), int.from_bytes(y, "big"), ec.SECP256R1()
        ).public_key()
    except ValueError as exc:
        raise KeyRejected("ec_point_not_on_curve") from exc
    tp = _thumbprint({"crv": "P-256", "kty": "EC", "x": jwk["x"], "y": jwk["y"]})
    return key, tp


def load_jwk(jwk: Any) -> VerificationKey:
    """Turn one JWK into a verification key, or raise KeyRejected."""
    if not isinstance(jwk, Mapping):
        raise KeyRejected("not_an_object")
    if _PRIVATE_MEMBERS & jwk.keys():
        raise KeyRejected("private_key_material")
    kty = jwk.get("kty")
    if kty not in _ALGS_FOR_KTY:
        raise KeyRejected("kty_not_allowed")
    use = jwk.get("use")
    if use is not None and use != "sig":
        raise KeyRejected("use_not_sig")
    key_ops = jwk.get("key_ops")
    if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
        raise KeyRejected("key_ops_without_verify")
    alg = jwk.get("alg")
    if alg is not None and (alg not in ALLOWED_ALGS or alg not in _ALGS_FOR_KTY[kty]):
        raise KeyRejected("alg_not_allowed")
    kid = jwk.get("kid")
    if kid is not None and (not isinstance(kid, str) or not kid or len(kid) > 256):
        raise KeyRejected("bad_kid")
    public_key, tp = _load_rsa(jwk) if kty == "RSA" else _load_ec(jwk)
    return VerificationKey(kid=kid, kty=kty, alg=alg, public_key=public_key, thumbprint=tp)


@dataclass(frozen=True)
class KeySet:
    keys: tuple[VerificationKey, ...]
    # (kid or "-", reason) for each skipped key.
    skipped: tuple[tuple[str, str], ...] = ()
    _by_kid: dict[str, VerificationKey] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        for key in self.keys:
            if key.kid is not None:
                self._by_kid[key.kid] = key

    def by_kid(self, kid: str) -> VerificationKey | None:
        return self._by_kid.get(kid)

    @property
    def thumbprints(self) -> frozenset[str]:
        return frozenset(k.thumbprint for k in self.keys)


def parse_jwks(document: Any) -> KeySet:
    """Validate a JWKS document ({"keys": [...]}) into a KeySet, or raise KeySetRejected."""
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise KeySetRejected("not a JWKS object with a 'keys' array")
    raw_keys = document["keys"]
    kids = [k.get("kid") for k in raw_keys if isinstance(k, Mapping) and k.get("kid") is not None]
    if len(kids) != len(set(map(str, kids))):
        raise KeySetRejected("duplicate kid in key set")
    if any(isinstance(k, Mapping) and _PRIVATE_MEMBERS & k.keys() for k in raw_keys):
        raise KeySetRejected("key set contains private or symmetric key material")
    usable: list[VerificationKey] = []
    skipped: list[tuple[str, str]] = []
    for raw in raw_keys:
        try:
            usable.append(load_jwk(raw))
        except KeyRejected as exc:
            kid = raw.get("kid") if isinstance(raw, Mapping) else None
            skipped.append((str(kid) if kid is not None else "-", exc.reason))
    if not usable:
        raise KeySetRejected("no usable signature key in key set")
    return KeySet(keys=tuple(usable), skipped=tuple(skipped))
