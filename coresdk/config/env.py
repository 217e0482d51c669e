"""Typed access to environment variables, raising ConfigError that names the variable.

Every service reads its settings through this once at start-up; nothing reads os.environ later.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from coresdk.errors import ConfigError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class Env:
    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def raw(self, name: str) -> str | None:
        value = self._environ.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def text(self, name: str, default: str | None = None) -> str | None:
        value = self.raw(name)
        return default if value is None else value

    def required(self, name: str, why: str = "is required") -> str:
        value = self.raw(name)
        if value is None:
            raise ConfigError(name, why)
        return value

    def integer(self, name: str, default: int, *, minimum: int, maximum: int) -> int:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = int(value, 10)
        except ValueError:
            raise ConfigError(name, f"must be an integer, got {value!r}") from None
        if not minimum <= number <= maximum:
            raise ConfigError(name, f"must be between {minimum} and {maximum}, got {number}")
        return number

    def number(self, name: str, default: float, *, minimum: float, maximum: float) -> float:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(name, f"must be a number, got {value!r}") from None
        if not minimum <= number <= maximum:
            raise ConfigError(name, f"must be between {minimum} and {maximum}, got {number}")
        return number

    def flag(self, name: str, default: bool) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ConfigError(name, f"must be true or false, got {value!r}")

    def file(self, name: str) -> Path | None:
        value = self.raw(name)
        if value is None:
            return None
        path = Path(value)
        if not path.is_file():
            raise ConfigError(name, f"file not found: {value}")
        return path

    def fetch_url(self, url: str, variable: str) -> str:
        """validate_fetch_url with the hosts this environment names in CORESDK_PLAINTEXT_HOSTS."""
        return validate_fetch_url(url, variable, plaintext_hosts(self))

    def host_list(self, name: str) -> frozenset[str]:
        """A list of exact host names (CORESDK_PLAINTEXT_HOSTS), read at start even where no URL uses it yet, so
        that a mistake in it fails early."""
        return plaintext_hosts(self, name)

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.raw(name) or default
        if value not in choices:
            raise ConfigError(name, f"must be one of {', '.join(choices)}, got {value!r}")
        return value


def is_loopback_host(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def split_host_port(address: str, variable: str) -> tuple[str, int]:
    """Split "host:port" or "[v6]:port"."""
    if address.startswith("["):
        host, sep, port = address[1:].partition("]:")
    else:
        host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(variable, f"must be host:port or [ipv6]:port, got {address!r}")
    return host, int(port)


PLAINTEXT_HOSTS = "CORESDK_PLAINTEXT_HOSTS"
_HOST_NAME = re.compile(r"^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$")


def plaintext_hosts(env: Env, name: str = PLAINTEXT_HOSTS) -> frozenset[str]:
    """Hosts the operator names, one by one, as reachable over plain http: inside a service mesh that already gives
    every connection mutual TLS (Istio, Linkerd). Exact names only: no wildcard, no address range, no scheme, so a
    typo or a new host never falls back to plain text on its own."""
    value = env.raw(name)
    if value is None:
        return frozenset()
    hosts = set()
    for item in value.split(","):
        host = item.strip().lower()
        if not host:
            continue
        if not _HOST_NAME.fullmatch(host) and not _is_ip(host):
            raise ConfigError(
                name,
                f"must list exact host names, comma-separated (no wildcard, port or scheme), got {item.strip()!r}",
            )
        hosts.add(host)
    return frozenset(hosts)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def validate_fetch_url(url: str, variable: str, plaintext: frozenset[str] = frozenset()) -> str:
    """Key material is fetched over https; plain http only to this machine or to a host named in
    CORESDK_PLAINTEXT_HOSTS (a mesh that provides mTLS). Never by default, never by pattern."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname:
        if is_loopback_host(parts.hostname) or parts.hostname.lower() in plaintext:
            return url
        raise ConfigError(
            variable,
            f"must be an https URL, got {url!r}: plain http only to loopback or to a host named in {PLAINTEXT_HOSTS}",
        )
    raise ConfigError(variable, f"must be an https URL (http only to loopback or {PLAINTEXT_HOSTS}), got {url!r}")
