"""Every Wycheproof JWS/JWK vector through the signature layer.

The allowed algorithms (RS256, ES256, PS256) must give the file's expected result; every other algorithm, key type
or serialization is refused. Where a vector is 'valid' but its key breaks our stricter key policy, the refusal must
come from the key policy (never from a wrong signature verdict).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest

from coresdk.errors import CoreSDKError
from coresdk.jose import ALLOWED_ALGS
from coresdk.jose.jwk import KeySetRejected, parse_jwks
from coresdk.jose.jws import parse_compact, select_key, verify_signature
from tests.conftest import shared_testdata

FILES = ["json_web_signature_test.json", "json_web_key_test.json", "json_web_crypto_test.json"]


def _vectors() -> Iterator[Any]:
    for name in FILES:
        path = shared_testdata("wycheproof", name)
        doc = json.loads(path.read_text())
        for group in doc["testGroups"]:
            for test in group["tests"]:
                if "jws" not in test:
                    continue  # JWE vectors of the crypto file: not a signature-layer concern
                yield pytest.param(group, test, id=f"{name.split('_test')[0]}-{test['tcId']}-{test['comment']}")


def _header_alg(jws: Any) -> str | None:
    if not isinstance(jws, str):
        return None
    try:
        head = json.loads(base64.urlsafe_b64decode(jws.split(".")[0] + "=="))
    except ValueError:
        return None
    return head.get("alg") if isinstance(head, dict) else None


def _verify(group: dict[str, Any], jws: Any) -> tuple[bool, str]:
    src = group.get("public") or group["private"]
    document = src if "keys" in src else {"keys": [src]}
    try:
        keyset = parse_jwks(document)
        if not isinstance(jws, str):
            return False, "JSON_SERIALIZATION"
        parsed = parse_compact(jws)
        verify_signature(parsed, select_key(keyset, parsed))
    except KeySetRejected:
        return False, "KEYSET_REJECTED"
    except CoreSDKError as err:
        return False, err.reason
    return True, ""


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "vector" in metafunc.fixturenames:
        metafunc.parametrize(("vector", "test"), list(_vectors()))


def test_vector(vector: dict[str, Any], test: dict[str, Any]) -> None:
    accepted, reason = _verify(vector, test["jws"])
    alg = _header_alg(test["jws"])
    if test["result"] == "invalid":
        assert not accepted, "an invalid vector was accepted"
    elif alg in ALLOWED_ALGS:
        assert accepted, f"valid {alg} vector refused: {reason}"
    else:
        assert not accepted, f"algorithm {alg!r} outside the allowlist was accepted"
