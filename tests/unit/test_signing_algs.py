"""Signing keys carry their own algorithm (issue 17): CORESDK_SIGNING_ALG decides what new keys are, never what a
stored key is. RS256 and PS256 share RSA keys, so a re-labelled key would publish a JWKS entry under which the
tokens it signed before no longer verify. In process on the SQLite store; the process-level test (a real sidecar)
is tests/integration/test_signing_algs.py."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from controlplane.keys.manager import RETIRED_KEY_PUBLISHED_FOR, KeyManager
from controlplane.keys.mint import access_claims
from controlplane.keys.signing import SigningKey, check_key_for_alg, jwks_document, load_signing_key
from coresdk.config.controlplane import SIGNING_ALGS, load_controlplane_config
from coresdk.errors import ConfigError
from coresdk.jose.jwk import parse_jwks
from tests.unit.oauth_harness import open_services

PEM = (serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
RSA_2048 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
P256 = ec.generate_private_key(ec.SECP256R1())
KEYS_BY_KIND = {
    "rsa-2048": RSA_2048,
    "rsa-1024": rsa.generate_private_key(public_exponent=65537, key_size=1024),  # noqa: S505 - must be refused
    "p256": P256,
    "p384": ec.generate_private_key(ec.SECP384R1()),
}
# which kinds of key may sign which algorithm, as the sidecar verifies them (coresdk.jose.jwk)
FITS = {("rsa-2048", "RS256"), ("rsa-2048", "PS256"), ("p256", "ES256")}


def _verify(token: str, key: SigningKey) -> dict[str, object]:
    """Verified the way a relying party does: the JWKS entry for the token's kid, its alg, nothing else."""
    entry = next(k for k in jwks_document([key])["keys"] if k["kid"] == jwt.get_unverified_header(token)["kid"])
    claims: dict[str, object] = jwt.decode(
        token, jwt.PyJWK(entry).key, algorithms=[entry["alg"]], audience="coresdk", issuer="https://cp.test"
    )
    return claims


def _mint(key: SigningKey) -> str:
    return key.sign_jws(
        access_claims(
            issuer="https://cp.test", subject="s", audience="coresdk", client_id="c", scopes=["a"], ttl_seconds=60
        )
    )


@pytest.mark.parametrize("kind", sorted(KEYS_BY_KIND))
@pytest.mark.parametrize("alg", SIGNING_ALGS)
def test_a_key_signs_only_the_algorithms_its_kind_allows(kind: str, alg: str, tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    path.write_bytes(KEYS_BY_KIND[kind].private_bytes(*PEM))
    if (kind, alg) in FITS:
        key = load_signing_key(path, generate_if_missing=False, alg=alg)
        token = _mint(key)
        assert jwt.get_unverified_header(token)["alg"] == alg
        assert _verify(token, key)["sub"] == "s"
        assert parse_jwks(jwks_document([key])).keys[0].permits(alg)  # the sidecar's own JWK rules accept it
    else:
        with pytest.raises(ConfigError) as err:
            load_signing_key(path, generate_if_missing=False, alg=alg)
        assert err.value.variable == "CORESDK_SIGNING_KEY_PATH"
        assert alg in str(err.value)


@pytest.mark.parametrize("alg", SIGNING_ALGS)
def test_a_generated_key_is_of_the_kind_its_algorithm_needs(alg: str, tmp_path: Path) -> None:
    key = load_signing_key(tmp_path / "dev.pem", generate_if_missing=True, alg=alg)
    assert key.alg == alg
    check_key_for_alg(key.private_key, alg)
    assert load_signing_key(tmp_path / "dev.pem", generate_if_missing=False, alg=alg).kid == key.kid


def test_rs256_and_ps256_of_one_rsa_key_share_the_thumbprint_but_not_the_label() -> None:
    rs, ps = SigningKey.from_private_key(RSA_2048, "RS256"), SigningKey.from_private_key(RSA_2048, "PS256")
    assert rs.kid == ps.kid
    assert rs.public_jwk()["alg"] == "RS256" and ps.public_jwk()["alg"] == "PS256"
    with pytest.raises(jwt.InvalidAlgorithmError):
        _verify(_mint(rs), ps)  # a PS256 label on an RS256 key's entry breaks that key's tokens: never re-label


def test_the_setting_is_validated_and_names_itself() -> None:
    base = {"CORESDK_ENV": "development", "CORESDK_DATA_DIR": "/tmp/unused-coresdk"}
    assert load_controlplane_config(base).signing_alg == "RS256"
    assert load_controlplane_config({**base, "CORESDK_SIGNING_ALG": "ES256"}).signing_alg == "ES256"
    for bad in ("HS256", "none", "rs256", "EdDSA"):
        with pytest.raises(ConfigError) as err:
            load_controlplane_config({**base, "CORESDK_SIGNING_ALG": bad})
        assert err.value.variable == "CORESDK_SIGNING_ALG"


async def test_switching_the_algorithm_keeps_every_stored_key_as_it_was(tmp_path: Path) -> None:
    services = await open_services(f"sqlite:///{tmp_path / 'cp.db'}", tmp_path)
    first = services.keys.active
    assert first.alg == "RS256"
    old_token = _mint(first)
    ids = {}
    for alg in ("PS256", "ES256"):
        # a restart under the new setting, same store: the stored keys are not re-labelled (PS256: with the same
        # RSA key file, which is already stored as RS256 and stays so)
        keys = KeyManager(services.store, services.server_keys, activation_delay=1.0, alg=alg)
        await keys.start(tmp_path / "signing-key.pem" if alg == "PS256" else None, None)
        assert {d["kid"]: d["alg"] for d in keys.describe()}[first.kid] == "RS256"
        new, activates_at = await keys.rotate()
        assert new.alg == alg
        assert isinstance(new.private_key, ec.EllipticCurvePrivateKey if alg == "ES256" else rsa.RSAPrivateKey)
        assert keys.signing_key(activates_at).kid == new.kid
        ids[alg] = new.kid
    # a fresh replica reads every key with its own algorithm
    again = KeyManager(services.store, services.server_keys, alg="ES256")
    await again.reload()
    now = time.time() + 2
    published = {k.kid: k for k in again.public_keys(now)}
    assert {kid: k.alg for kid, k in published.items()} == {
        first.kid: "RS256",
        ids["PS256"]: "PS256",
        ids["ES256"]: "ES256",
    }
    assert _verify(old_token, published[first.kid])["sub"] == "s"
    for kid in ids.values():
        assert _verify(_mint(published[kid]), published[kid])["sub"] == "s"
    assert again.signing_key(now).alg == "ES256"
    # a key that took over retires the one before; once no token it signed can be alive, it leaves the JWKS
    later = now + RETIRED_KEY_PUBLISHED_FOR + 1
    assert {k.kid for k in again.public_keys(later)} == {ids["ES256"]}
    await services.store.db.close()


CLAIMS = {"iss": "https://cp.test", "sub": "s", "aud": "coresdk", "jti": "j", "iat": 1, "exp": 2**31}


@pytest.mark.parametrize("alg", SIGNING_ALGS)
def test_the_lean_signer_makes_the_token_pyjwt_makes(alg: str) -> None:
    """The token endpoint signs without PyJWT's per-call work; the bytes must still be PyJWT's: the same header
    and payload segments always, the whole token for RS256 (PKCS#1 v1.5 is deterministic), and a signature
    PyJWT accepts for the randomised PS256 and ES256."""
    key = SigningKey.from_private_key(RSA_2048 if alg != "ES256" else P256, alg)
    ours = key.sign_jws(json.dumps(CLAIMS, separators=(",", ":")).encode())
    theirs = jwt.encode(CLAIMS, key.private_key, algorithm=alg, headers={"kid": key.kid, "typ": "at+jwt"})
    assert ours.split(".")[:2] == theirs.split(".")[:2]
    if alg == "RS256":
        assert ours == theirs
    public = key.private_key.public_key()
    assert jwt.decode(ours, public, algorithms=[alg], audience="coresdk")["sub"] == "s"
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(
            ours[:-4] + ("AAAA" if not ours.endswith("AAAA") else "BBBB"), public, algorithms=[alg], audience="coresdk"
        )
