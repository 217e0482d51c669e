"""Start-up configuration: secure defaults, and every refusal names its variable."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coresdk.config.sidecar import load_sidecar_config
from coresdk.errors import ConfigError

PROD = {
    "CORESDK_JWKS_URI": "https://idp.example/jwks.json",
    "CORESDK_EXPECTED_ISSUER": "https://idp.example",
    "CORESDK_EXPECTED_AUDIENCE": "api://a,api://b",
}


def refused(env: dict[str, str]) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_sidecar_config(env)
    return info.value


def test_defaults_are_production_and_loopback() -> None:
    cfg = load_sidecar_config(PROD)
    assert cfg.env == "production"
    assert cfg.sidecar_addr == "[::1]:50051"
    assert cfg.health_addr == "127.0.0.1:9091"
    assert cfg.tokens.max_ttl_seconds == 3600
    assert cfg.tokens.leeway_seconds == 30
    assert cfg.jwks.refetch_cooldown_seconds == 30
    assert cfg.issuers[0].audiences == ("api://a", "api://b")


@pytest.mark.parametrize("missing", sorted(PROD))
def test_production_requires_issuer_audience_jwks(missing: str) -> None:
    env = {k: v for k, v in PROD.items() if k != missing}
    assert refused(env).variable == missing
    assert refused({**env, "CORESDK_ENV": "production"}).variable == missing


def test_development_fills_local_control_plane_but_keeps_checks() -> None:
    cfg = load_sidecar_config({"CORESDK_ENV": "development"})
    (issuer,) = cfg.issuers
    assert issuer.issuer == "http://127.0.0.1:8080"
    assert issuer.jwks_uri == "http://127.0.0.1:8080/api/v1/jwks"
    assert issuer.audiences == ("coresdk",)


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("CORESDK_JWKS_URI", "http://idp.example/jwks.json"),
        ("CORESDK_JWKS_URI", "ftp://127.0.0.1/jwks"),
        ("CORESDK_MAX_TOKEN_TTL", "7200"),
        ("CORESDK_CLOCK_LEEWAY", "61"),
        ("CORESDK_JWKS_REFETCH_COOLDOWN", "5"),
        ("CORESDK_ENV", "dev"),
        ("CORESDK_AUTH_CACHE_SIZE", "many"),
        ("CORESDK_REQUIRE_AT_JWT_TYP", "perhaps"),
        ("CORESDK_HEALTH_ADDR", "9091"),
    ],
)
def test_bad_values_name_the_variable(var: str, value: str) -> None:
    assert refused({**PROD, var: value}).variable == var


def test_non_loopback_address_needs_mtls() -> None:
    for addr in ("0.0.0.0:50051", "[::]:50051", "10.1.2.3:50051", "example.com:50051"):
        err = refused({**PROD, "CORESDK_SIDECAR_ADDR": addr})
        assert err.variable == "CORESDK_TLS_CERT_FILE"
    for addr in ("127.0.0.1:50051", "[::1]:1", "localhost:50051"):
        assert load_sidecar_config({**PROD, "CORESDK_SIDECAR_ADDR": addr}).tls is None


def test_partial_tls_names_the_missing_file(tmp_path: Path) -> None:
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    err = refused({**PROD, "CORESDK_TLS_CERT_FILE": str(cert)})
    assert err.variable == "CORESDK_TLS_KEY_FILE"


def test_issuers_file(tmp_path: Path) -> None:
    path = tmp_path / "issuers.json"
    path.write_text(json.dumps({"issuers": [{"issuer": "https://b", "jwks_uri": "https://b/j", "audiences": ["x"]}]}))
    cfg = load_sidecar_config({"CORESDK_ISSUERS_FILE": str(path)})
    assert [i.issuer for i in cfg.issuers] == ["https://b"]
    cfg = load_sidecar_config({**PROD, "CORESDK_ISSUERS_FILE": str(path)})
    assert [i.issuer for i in cfg.issuers] == ["https://idp.example", "https://b"]
    path.write_text(json.dumps({"issuers": [{"issuer": "https://b", "jwks_uri": "http://b/j", "audiences": ["x"]}]}))
    assert "jwks_uri" in refused({"CORESDK_ISSUERS_FILE": str(path)}).variable
    path.write_text(
        json.dumps({"issuers": [{"issuer": "https://idp.example", "jwks_uri": "https://b", "audiences": ["x"]}]})
    )
    assert refused({**PROD, "CORESDK_ISSUERS_FILE": str(path)}).variable == "CORESDK_ISSUERS_FILE"
