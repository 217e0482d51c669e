"""Authorization server metadata (RFC 8414) in process (controlplane.oauth.server_metadata): every promise in
the document is kept by a module of its own."""

from __future__ import annotations

import importlib

from controlplane.oauth import pkce
from controlplane.oauth.server_metadata import authorization_server_metadata

ISSUER = "https://login.example.test/"


def test_endpoints_hang_off_the_issuer() -> None:
    doc = authorization_server_metadata(ISSUER)
    assert doc["issuer"] == ISSUER  # as configured: RFC 8414 §3.3 compares it exactly
    for name in (
        "authorization_endpoint",
        "token_endpoint",
        "revocation_endpoint",
        "introspection_endpoint",
        "jwks_uri",
    ):
        assert doc[name].startswith("https://login.example.test/") and "//" not in doc[name][len("https://") :]


def test_only_s256_and_each_grant_advertised_has_its_module() -> None:
    doc = authorization_server_metadata(ISSUER)
    assert doc["code_challenge_methods_supported"] == ["S256"] == list(pkce.METHODS)
    assert doc["response_types_supported"] == ["code"]
    for grant in doc["grant_types_supported"]:
        module = importlib.import_module(f"controlplane.oauth.grants.{grant}")
        assert module.__doc__ and "RFC 6749" in module.__doc__


def test_introspection_is_for_authenticated_clients_only() -> None:
    doc = authorization_server_metadata(ISSUER)
    assert "none" in doc["token_endpoint_auth_methods_supported"]
    assert "none" not in doc["introspection_endpoint_auth_methods_supported"]
    assert doc["authorization_response_iss_parameter_supported"] is True
