"""Key policy and strict encoding rules of coresdk.jose."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coresdk.jose.b64 import Base64Error, b64url_decode, b64url_encode
from coresdk.jose.jwk import KeyRejected, KeySetRejected, load_jwk, parse_jwks
from tests.support.tokens import SigningKey, b64


@pytest.mark.parametrize("data", [b"", b"f", b"fo", b"foo", bytes(range(256))])
def test_b64_roundtrip(data: bytes) -> None:
    assert b64url_decode(b64url_encode(data)) == data


@pytest.mark.parametrize("bad", ["Zm9v=", "Zm9v+", "Zm9v/", "Zm 9v", "Z", "Zm9=", "Zh", "Zm9w\n", "Zm9vYh"])
def test_b64_refuses_non_canonical(bad: str) -> None:
    with pytest.raises(Base64Error):
        b64url_decode(bad)


@given(st.text(alphabet="AZaz09-_+/= \n.\u00e9\x00", max_size=12))
def test_b64_accepts_exactly_the_canonical_spelling(text: str) -> None:
    """Whatever the characters, a value is accepted only if it is the one unpadded base64url encoding of its bytes."""
    try:
        decoded = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        canonical = b64url_encode(decoded) == text
    except ValueError:
        canonical = False
    if canonical:
        assert b64url_decode(text) == decoded
    else:
        with pytest.raises(Base64Error):
            b64url_decode(text)


@pytest.fixture(scope="module")
def rsa_key() -> SigningKey:
    return SigningKey.rsa("k1")


@pytest.fixture(scope="module")
def ec_key() -> SigningKey:
    return SigningKey.ec("e1")


def test_good_keys_load(rsa_key: SigningKey, ec_key: SigningKey) -> None:
    assert load_jwk(rsa_key.jwk()).permits("RS256")
    assert not load_jwk(rsa_key.jwk()).permits("PS256")  # the key pins RS256
    assert load_jwk(rsa_key.jwk(alg=None)).permits("PS256")
    assert load_jwk(ec_key.jwk()).permits("ES256")
    assert not load_jwk(ec_key.jwk()).permits("RS256")


def test_small_rsa_refused() -> None:
    with pytest.raises(KeyRejected, match="rsa_key_too_small"):
        load_jwk(SigningKey.rsa("small", bits=1024).jwk())


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"use": "enc"}, "use_not_sig"),
        ({"key_ops": ["encrypt"]}, "key_ops_without_verify"),
        ({"key_ops": "verify"}, "key_ops_without_verify"),
        ({"alg": "RS512"}, "alg_not_allowed"),
        ({"alg": "ES256"}, "alg_not_allowed"),
        ({"kty": "oct"}, "kty_not_allowed"),
        ({"kty": "OKP"}, "kty_not_allowed"),
        ({"e": b64((1).to_bytes(1, "big"))}, "rsa_bad_exponent"),
        ({"e": b64((65538).to_bytes(3, "big"))}, "rsa_bad_exponent"),
        ({"n": "not base64!"}, "bad_n"),
        ({"kid": ""}, "bad_kid"),
        ({"d": "AQAB"}, "private_key_material"),
    ],
)
def test_rsa_key_policy(rsa_key: SigningKey, change: dict[str, str], reason: str) -> None:
    with pytest.raises(KeyRejected) as info:
        load_jwk(rsa_key.jwk(**change))
    assert info.value.reason == reason


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"crv": "P-384"}, "ec_curve_not_allowed"),
        ({"crv": "secp256k1"}, "ec_curve_not_allowed"),
        ({"y": b64(bytes(32))}, "ec_point_not_on_curve"),
        ({"x": b64(bytes(31))}, "ec_bad_coordinate_length"),
    ],
)
def test_ec_key_policy(ec_key: SigningKey, change: dict[str, str], reason: str) -> None:
    with pytest.raises(KeyRejected) as info:
        load_jwk(ec_key.jwk(**change))
    assert info.value.reason == reason


def test_keyset_rules(rsa_key: SigningKey, ec_key: SigningKey) -> None:
    ks = parse_jwks({"keys": [rsa_key.jwk(), ec_key.jwk(), rsa_key.jwk(kid="enc", use="enc")]})
    assert [k.kid for k in ks.keys] == ["k1", "e1"]
    assert ks.skipped == (("enc", "use_not_sig"),)
    with pytest.raises(KeySetRejected, match="duplicate kid"):
        parse_jwks({"keys": [rsa_key.jwk(), ec_key.jwk(kid="k1")]})
    with pytest.raises(KeySetRejected, match="private"):
        parse_jwks({"keys": [rsa_key.jwk(), {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"}]})
    with pytest.raises(KeySetRejected, match="no usable"):
        parse_jwks({"keys": [rsa_key.jwk(use="enc")]})
    for bad in ([], {"keys": {}}, "x", None):
        with pytest.raises(KeySetRejected):
            parse_jwks(bad)


def test_thumbprint_identifies_key_material_not_kid(rsa_key: SigningKey) -> None:
    other = SigningKey.rsa("k1")
    assert load_jwk(rsa_key.jwk()).thumbprint != load_jwk(other.jwk()).thumbprint
    assert load_jwk(rsa_key.jwk()).thumbprint == load_jwk(rsa_key.jwk(kid="renamed")).thumbprint


def test_rfc7638_thumbprint_example() -> None:
    # RFC 7638 §3.1 example key and its thumbprint
    jwk = {
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    assert load_jwk(jwk).thumbprint == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
