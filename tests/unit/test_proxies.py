"""coresdk.proxies: forwarded addresses believed only from trusted proxies, walked from the nearest hop."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coresdk.errors import ConfigError
from coresdk.proxies import parse_trusted_proxies

TRUSTED = parse_trusted_proxies("10.0.0.0/8, 127.0.0.1, ::1")


def test_untrusted_peer_headers_are_ignored() -> None:
    assert TRUSTED.client_address("203.0.113.9", {"X-Forwarded-For": "1.2.3.4"}) == "203.0.113.9"
    assert TRUSTED.client_address("203.0.113.9", {"Forwarded": "for=1.2.3.4"}) == "203.0.113.9"


def test_nothing_trusted_by_default() -> None:
    assert parse_trusted_proxies(None).client_address("127.0.0.1", {"X-Forwarded-For": "1.2.3.4"}) == "127.0.0.1"


def test_rightmost_untrusted_hop_is_the_client() -> None:
    headers = {"X-Forwarded-For": "6.6.6.6, 198.51.100.7, 10.1.2.3"}
    assert TRUSTED.client_address("127.0.0.1", headers) == "198.51.100.7"


def test_forwarded_header_forms() -> None:
    assert TRUSTED.client_address("127.0.0.1", {"Forwarded": 'for="[2001:db8::1]:443";proto=https'}) == "2001:db8::1"
    assert TRUSTED.client_address("::1", {"Forwarded": "for=192.0.2.60;proto=http, for=10.0.0.2"}) == "192.0.2.60"
    assert TRUSTED.client_address("127.0.0.1", {"Forwarded": "for=192.0.2.1:8080"}) == "192.0.2.1"


def test_trusted_peer_without_headers_is_itself() -> None:
    assert TRUSTED.client_address("10.0.0.5", {}) == "10.0.0.5"


@given(st.lists(st.ip_addresses(v=4).map(str), min_size=1, max_size=5), st.ip_addresses(v=4).map(str))
def test_a_client_cannot_choose_its_address_past_a_trusted_proxy(spoofed: list[str], real: str) -> None:
    """Whatever the client prepends, the trusted proxy's appended hop (the real peer it saw) wins."""
    trusted = parse_trusted_proxies("127.0.0.1")
    if real == "127.0.0.1":
        return
    assert trusted.client_address("127.0.0.1", {"X-Forwarded-For": ", ".join([*spoofed, real])}) == real


@pytest.mark.parametrize("bad", ["10.0.0.0/33", "example.com", "1.2.3"])
def test_bad_cidr_names_the_variable(bad: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_trusted_proxies(bad)
    assert err.value.variable == "CORESDK_TRUSTED_PROXIES"
