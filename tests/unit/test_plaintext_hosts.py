"""Plain http inside a cluster only to hosts an operator names (CORESDK_PLAINTEXT_HOSTS), never by default or by
pattern (issue 14). The class: any http URL to a host that is neither loopback nor named exactly is refused by every
URL the loaders validate."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coresdk.config.env import Env, validate_fetch_url
from coresdk.errors import ConfigError

LABEL = st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True)
HOST = st.lists(LABEL, min_size=1, max_size=3).map(".".join).filter(lambda h: h != "localhost")


@given(host=HOST, named=st.lists(HOST, max_size=3))
def test_http_only_to_a_host_named_exactly(host: str, named: list[str]) -> None:
    env = Env({"CORESDK_PLAINTEXT_HOSTS": ",".join(named)})
    url = f"http://{host}:8080/api/v1/jwks"
    if host in named:
        assert env.fetch_url(url, "CORESDK_JWKS_URI") == url
    else:
        with pytest.raises(ConfigError, match="CORESDK_PLAINTEXT_HOSTS"):
            env.fetch_url(url, "CORESDK_JWKS_URI")
    assert env.fetch_url(f"https://{host}/x", "CORESDK_JWKS_URI") == f"https://{host}/x"  # https is never limited


@given(host=HOST)
def test_a_named_host_does_not_admit_its_subdomains_or_parents(host: str) -> None:
    env = Env({"CORESDK_PLAINTEXT_HOSTS": host})
    for other in (f"evil.{host}", f"{host}.evil.example", f"{host}x"):
        with pytest.raises(ConfigError):
            env.fetch_url(f"http://{other}/", "CORESDK_CP_URL")


@pytest.mark.parametrize("value", ["*.svc", "http://cp", "cp:8080", "10.0.0.0/8", "cp/x", "cp .svc", "-cp", "cp_1"])
def test_patterns_ports_schemes_and_ranges_are_refused_naming_the_variable(value: str) -> None:
    with pytest.raises(ConfigError, match="CORESDK_PLAINTEXT_HOSTS"):
        Env({"CORESDK_PLAINTEXT_HOSTS": value}).host_list("CORESDK_PLAINTEXT_HOSTS")


def test_without_the_variable_only_loopback_gets_http() -> None:
    assert validate_fetch_url("http://127.0.0.1:8080/", "CORESDK_CP_URL")
    assert validate_fetch_url("http://[::1]:8080/", "CORESDK_CP_URL")
    with pytest.raises(ConfigError, match="CORESDK_CP_URL"):
        validate_fetch_url("http://coresdk-controlplane:8080", "CORESDK_CP_URL")
    with pytest.raises(ConfigError, match="CORESDK_CP_URL"):
        validate_fetch_url("ftp://coresdk-controlplane/", "CORESDK_CP_URL", frozenset({"coresdk-controlplane"}))
