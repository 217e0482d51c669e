"""The client reads the sidecar's own variables once, and refuses (naming the variable) what would put bearer
tokens on the network in the clear."""

from __future__ import annotations

from pathlib import Path

import pytest

from coresdk.client import ClientSettings
from coresdk.client.calls import Retry, parse_permission
from coresdk.errors import ConfigError


def test_defaults_to_the_loopback_sidecar() -> None:
    settings = ClientSettings.from_env({})
    assert (settings.address, settings.tls) == ("[::1]:50051", None)


@pytest.mark.parametrize("addr", ["10.0.0.5:50051", "sidecar.internal:50051", "[2001:db8::1]:50051"])
def test_an_address_beyond_this_machine_needs_mtls(addr: str) -> None:
    with pytest.raises(ConfigError) as info:
        ClientSettings.from_env({"CORESDK_SIDECAR_ADDR": addr})
    assert info.value.variable == "CORESDK_TLS_CERT_FILE"


def test_mtls_needs_all_three_files(tmp_path: Path) -> None:
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    with pytest.raises(ConfigError) as info:
        ClientSettings.from_env({"CORESDK_TLS_CERT_FILE": str(cert)})
    assert info.value.variable == "CORESDK_TLS_KEY_FILE"
    with pytest.raises(ConfigError) as missing:
        ClientSettings.from_env(
            {"CORESDK_TLS_CERT_FILE": str(cert), "CORESDK_TLS_KEY_FILE": str(cert), "CORESDK_TLS_CA_FILE": "/nope"}
        )
    assert missing.value.variable == "CORESDK_TLS_CA_FILE"
    full = {n: str(cert) for n in ("CORESDK_TLS_CERT_FILE", "CORESDK_TLS_KEY_FILE", "CORESDK_TLS_CA_FILE")}
    assert ClientSettings.from_env({**full, "CORESDK_SIDECAR_ADDR": "10.0.0.5:50051"}).tls is not None


def test_bad_address_names_the_variable() -> None:
    with pytest.raises(ConfigError) as info:
        ClientSettings.from_env({"CORESDK_SIDECAR_ADDR": "nonsense"})
    assert info.value.variable == "CORESDK_SIDECAR_ADDR"


@pytest.mark.parametrize("permission", ["orders", "orders:", ":read", "Orders:read", "orders:read:x", "orders read"])
def test_a_malformed_permission_is_refused_at_once(permission: str) -> None:
    with pytest.raises(ValueError):
        parse_permission(permission)


def test_backoff_stays_within_its_bounds() -> None:
    delays = list(Retry(attempts=6, initial_backoff_seconds=0.1, max_backoff_seconds=0.3).delays())
    assert len(delays) == 5 and all(0 <= d <= 0.3 for d in delays)
