"""JWS compact serialization: strict parsing and signature verification for RS256, ES256 and PS256 only.

The header is judged before any key is looked up: a token cannot choose its algorithm family outside the
allowlist, cannot bring its own key (jwk/jku/x5u/x5c), and cannot demand extensions we do not implement (crit).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from coresdk import reasons
from coresdk.errors import InvalidArgument, Unauthenticated
from coresdk.jose import ALLOWED_ALGS
from coresdk.jose.b64 import Base64Error, b64url_decode
from coresdk.jose.jwk import KeySet, VerificationKey

DEFAULT_MAX_TOKEN_BYTES = 8192
_EMBEDDED_KEY_HEADERS = ("jwk", "jku", "x5u", "x5c")
_REFUSED_HEADERS = ("crit", "b64", "zip", "enc")
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_SHA256 = hashes.SHA256()
_PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
_PKCS1 = padding.PKCS1v15()
_ECDSA = ec.ECDSA(hashes.SHA256())


class DuplicateKeyError(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # dict() keeps the last of equal keys; a length mismatch is how a duplicate shows (one C call, no Python loop).
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKeyError(key)
            seen.add(key)
    return out


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"non-finite number {name}")


def _finite(text: str) -> float:
    # 1e400 is valid JSON that a double cannot hold: float() makes it inf, which no claim may be.
    value = float(text)
    if value in (_INF, -_INF):
        raise ValueError(f"number out of range {text[:32]}")
    return value


_INF = float("inf")
# Built once: json.loads() with hooks would construct a new decoder for every call.
_STRICT_DECODER = json.JSONDecoder(
    object_pairs_hook=_no_duplicates, parse_constant=_refuse_constant, parse_float=_finite
)


def strict_json_object(data: bytes) -> dict[str, Any]:
    """Parse UTF-8 JSON that must be an object with unique keys and finite numbers."""
    try:
        value = _STRICT_DECODER.decode(data.decode("utf-8", "strict"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise Unauthenticated(reasons.MALFORMED, "token segment is not valid JSON") from exc
    if not isinstance(value, dict):
        raise Unauthenticated(reasons.MALFORMED, "token segment is not a JSON object")
    return value


@dataclass(frozen=True)
class CompactJWS:
    header: Mapping[str, Any]  # read-only: one judged header is shared by every token that carries it
    payload: bytes
    signing_input: bytes
    signature: bytes

    @property
    def alg(self) -> str:
        return str(self.header["alg"])

    @property
    def kid(self) -> str | None:
        kid = self.header.get("kid")
        return kid if isinstance(kid, str) else None


# An issuer signs thousands of tokens under the same header segment ({"alg":..,"kid":..,"typ":..}): the verdict on a
# header is a pure function of its base64url text, so an accepted header is judged once and kept (bounded).
_HEADER_CACHE_SIZE = 256
_MAX_CACHED_HEADER = 512
_judged_headers: dict[str, Mapping[str, Any]] = {}


def _judge_header(h64: str) -> Mapping[str, Any]:
    """Decode and check a protected header; raise Unauthenticated on the first broken rule."""
    cached = _judged_headers.get(h64)
    if cached is not None:
        return cached
    try:
        header_bytes = b64url_decode(h64)
    except Base64Error as exc:
        raise Unauthenticated(reasons.MALFORMED, "token segment is not canonical base64url") from exc
    header = strict_json_object(header_bytes)
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in ALLOWED_ALGS:
        raise Unauthenticated(reasons.ALG_NOT_ALLOWED, "algorithm not allowed; RS256, ES256 and PS256 only")
    for name in _EMBEDDED_KEY_HEADERS:
        if name in header:
            raise Unauthenticated(reasons.EMBEDDED_KEY_REFUSED, f"header parameter '{name}' is never trusted")
    for name in _REFUSED_HEADERS:
        if name in header:
            raise Unauthenticated(reasons.CRIT_NOT_SUPPORTED, f"header parameter '{name}' is not supported")
    kid = header.get("kid")
    if kid is not None and (not isinstance(kid, str) or not kid or len(kid) > 256):
        raise Unauthenticated(reasons.MALFORMED, "kid must be a non-empty string")
    judged = MappingProxyType(header)
    if len(h64) <= _MAX_CACHED_HEADER:
        if len(_judged_headers) >= _HEADER_CACHE_SIZE:
            _judged_headers.pop(next(iter(_judged_headers)))
        _judged_headers[h64] = judged
    return judged


def parse_compact(token: str, max_bytes: int = DEFAULT_MAX_TOKEN_BYTES) -> CompactJWS:
    """Split and decode a compact JWS, enforcing the header rules. Nothing here is trusted yet."""
    if not token:
        raise Unauthenticated(reasons.TOKEN_MISSING, "no token")
    if len(token) > max_bytes:
        raise InvalidArgument(reasons.TOKEN_TOO_LARGE, f"token exceeds {max_bytes} bytes")
    if not token.isascii():
        raise Unauthenticated(reasons.MALFORMED, "token is not ASCII")
    parts = token.split(".")
    if len(parts) != 3:
        raise Unauthenticated(reasons.MALFORMED, "token is not a three-part compact JWS")
    h64, p64, s64 = parts
    try:
        payload = b64url_decode(p64)
        signature = b64url_decode(s64)
    except Base64Error as exc:
        raise Unauthenticated(reasons.MALFORMED, "token segment is not canonical base64url") from exc
    header = _judge_header(h64)
    if not signature:
        raise Unauthenticated(reasons.BAD_SIGNATURE, "empty signature")
    return CompactJWS(
        header=header,
        payload=payload,
        signing_input=token[: len(h64) + 1 + len(p64)].encode("ascii"),
        signature=signature,
    )


def select_key(keyset: KeySet, jws: CompactJWS) -> VerificationKey:
    """Pick the key by kid; without a kid only a single-key set is unambiguous."""
    kid = jws.kid
    if kid is None:
        if len(keyset.keys) != 1:
            raise Unauthenticated(reasons.KID_REQUIRED, "token has no kid and the key set has several keys")
        key = keyset.keys[0]
    else:
        found = keyset.by_kid(kid)
        if found is None:
            raise Unauthenticated(reasons.UNKNOWN_KID, "no key with this kid")
        key = found
    if not key.permits(jws.alg):
        raise Unauthenticated(reasons.KEY_ALG_MISMATCH, "the key does not permit the token's algorithm")
    return key


def verify_signature(jws: CompactJWS, key: VerificationKey) -> None:
    """Raise Unauthenticated(BAD_SIGNATURE) unless the signature is valid for key under the header's alg."""
    alg = jws.alg
    if not key.permits(alg):
        raise Unauthenticated(reasons.KEY_ALG_MISMATCH, "the key does not permit the token's algorithm")
    sig = jws.signature
    pub = key.public_key
    try:
        if isinstance(pub, rsa.RSAPublicKey):
            if len(sig) != (pub.key_size + 7) // 8:
                raise InvalidSignature()
            pub.verify(sig, jws.signing_input, _PKCS1 if alg == "RS256" else _PSS, _SHA256)
        else:
            # JWS ES256 signatures are raw r||s, exactly 64 bytes (RFC 7518 §3.4), never DER.
            if len(sig) != 64:
                raise InvalidSignature()
            r = int.from_bytes(sig[:32], "big")
            s = int.from_bytes(sig[32:], "big")
            if not (0 < r < _P256_ORDER and 0 < s < _P256_ORDER):
                raise InvalidSignature()
            pub.verify(encode_dss_signature(r, s), jws.signing_input, _ECDSA)
    except InvalidSignature as exc:
        raise Unauthenticated(reasons.BAD_SIGNATURE, "signature verification failed") from exc
