"""CORESDK_SIGNING_ALG end to end (issue 17): one control plane (SQLite) switched RS256 → PS256 → ES256 with
restarts and rotations. Every token it issued on the way verifies in a real sidecar, with PyJWT against the JWKS
(each key under the algorithm it was made for) and at the introspection endpoint; an initial key file that cannot
sign the configured algorithm stops the start with an error naming CORESDK_SIGNING_KEY_PATH."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from coresdk.v1 import auth_pb2, auth_pb2_grpc
from tests.support.controlplane import ControlPlaneProcess
from tests.support.grpc_client import error_reason
from tests.support.processes import SidecarProcess

PEM = (serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _jwks(cp: ControlPlaneProcess) -> dict[str, dict[str, Any]]:
    resp = requests.get(f"{cp.url}/api/v1/jwks", timeout=10)
    assert resp.status_code == 200
    return {k["kid"]: k for k in resp.json()["keys"]}


def _header(token: str) -> dict[str, Any]:
    return jwt.get_unverified_header(token)


def _subject(token: str) -> str:
    return str(jwt.decode(token, options={"verify_signature": False})["sub"])


def _rotate_and_wait(cp: ControlPlaneProcess, app: dict[str, Any]) -> str:
    """Rotate; return a token signed by the new key once it signs (the activation delay here is 1 s)."""
    rotated = cp.admin("POST", "/api/v1/keys/rotate")
    assert rotated.status_code == 200, rotated.text
    return _token_from(cp, app, rotated.json()["kid"])


def _token_from(cp: ControlPlaneProcess, app: dict[str, Any], kid: str) -> str:
    deadline = time.monotonic() + 15
    while True:
        token = cp.client_token(app)
        if _header(token)["kid"] == kid:
            return token
        assert time.monotonic() < deadline, f"key {kid} never started signing"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ControlPlaneProcess, dict[str, str]]]:
    """Tokens by the setting they were issued under, from one control plane whose setting changed twice."""
    directory = tmp_path_factory.mktemp("algs")
    cp = ControlPlaneProcess(directory, f"sqlite:///{directory / 'cp.db'}")
    try:
        app = cp.create_app(name="algs", scopes=["a:read"], grant_types=["client_credentials"])
        tokens = {"RS256": cp.client_token(app)}
        # PS256 with the same RSA key file: the stored key stays RS256 (it signs RS256 until a rotation)
        cp.env["CORESDK_SIGNING_ALG"] = "PS256"
        cp.restart()
        tokens["RS256 after the switch"] = cp.client_token(app)
        tokens["PS256"] = _rotate_and_wait(cp, app)
        # ES256 needs an EC key file: a new file is published first and then signs, like a rotation
        ec_path = directory / "initial-ec.pem"
        ec_path.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(*PEM))
        cp.env.update({"CORESDK_SIGNING_ALG": "ES256", "CORESDK_SIGNING_KEY_PATH": str(ec_path)})
        cp.restart()
        imported = [k["kid"] for k in cp.admin("GET", "/api/v1/keys").json()["keys"] if k["alg"] == "ES256"]
        assert len(imported) == 1
        tokens["ES256 (imported file)"] = _token_from(cp, app, imported[0])
        tokens["ES256 (rotated)"] = _rotate_and_wait(cp, app)
        yield cp, tokens
    finally:
        cp.stop()


def test_each_token_names_the_algorithm_of_its_key_and_the_jwks_agrees(
    history: tuple[ControlPlaneProcess, dict[str, str]],
) -> None:
    cp, tokens = history
    published = _jwks(cp)
    expected = {name: name.split()[0] for name in tokens}
    assert {name: _header(t)["alg"] for name, t in tokens.items()} == expected
    assert {name: published[_header(t)["kid"]]["alg"] for name, t in tokens.items()} == expected
    assert _header(tokens["RS256"])["kid"] == _header(tokens["RS256 after the switch"])["kid"]
    assert len({_header(t)["kid"] for t in tokens.values()}) == 4
    rotated_ec = published[_header(tokens["ES256 (rotated)"])["kid"]]
    assert (rotated_ec["kty"], rotated_ec["crv"]) == ("EC", "P-256")  # rotation under ES256 makes a P-256 key
    assert {k["kid"]: k["alg"] for k in cp.admin("GET", "/api/v1/keys").json()["keys"]} == {
        k["kid"]: k["alg"] for k in published.values()
    }


def test_every_token_verifies_with_pyjwt_against_the_published_key(
    history: tuple[ControlPlaneProcess, dict[str, str]],
) -> None:
    cp, tokens = history
    published = _jwks(cp)
    for name, token in tokens.items():
        entry = published[_header(token)["kid"]]
        claims = jwt.decode(
            token, jwt.PyJWK(entry).key, algorithms=[entry["alg"]], audience="coresdk", issuer=cp.env["CORESDK_ISSUER"]
        )
        assert claims["client_id"] == claims["sub"], name


def test_every_token_is_accepted_by_a_real_sidecar(history: tuple[ControlPlaneProcess, dict[str, str]]) -> None:
    cp, tokens = history
    sidecar = SidecarProcess(cp.sidecar_env())
    try:
        with grpc.insecure_channel(sidecar.target) as channel:
            stub = auth_pb2_grpc.AuthServiceStub(channel)
            outcomes = {}
            for name, token in tokens.items():
                try:
                    reply = stub.Authenticate(auth_pb2.AuthenticateRequest(token=token), timeout=10)
                    outcomes[name] = "OK" if reply.subject == _subject(token) else f"subject {reply.subject!r}"
                except grpc.RpcError as err:
                    outcomes[name] = f"{err.code().name}:{error_reason(err)}"  # type: ignore[attr-defined]
    finally:
        sidecar.stop()
    assert outcomes == dict.fromkeys(tokens, "OK")


def test_every_token_is_active_at_introspection(history: tuple[ControlPlaneProcess, dict[str, str]]) -> None:
    """Introspection recognises a token by its key and that key's algorithm (it used to accept RS256 only)."""
    cp, tokens = history
    app = cp.create_app(name="introspector", scopes=["coresdk:introspect"], grant_types=["client_credentials"])
    for name, token in tokens.items():
        resp = requests.post(
            f"{cp.url}/v1/oauth/introspect",
            data={"token": token},
            auth=(app["client_id"], app["client_secret"]),
            timeout=10,
        )
        assert resp.status_code == 200, resp.text
        assert resp.json()["active"] is True, name


def test_an_initial_key_that_cannot_sign_the_algorithm_stops_the_start(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError) as err:
        ControlPlaneProcess(tmp_path, f"sqlite:///{tmp_path / 'cp.db'}", CORESDK_SIGNING_ALG="ES256")
    # it exits (status 2), not "not ready": the key is judged with the store open, and the store is closed again
    assert "control plane exited 2" in str(err.value)
    assert "CORESDK_SIGNING_KEY_PATH" in str(err.value)
    assert "ES256" in str(err.value)
