"""The real client address behind proxies (RFC 7239 `Forwarded`, `X-Forwarded-For`), believed only from trusted peers.

A server behind a proxy sees one TCP peer for every client. Keying rate limits and the login limiter on that peer
turns per-address budgets into one global budget and lets one client lock a user out for everyone. Forwarded
headers fix that, but anyone can send them: they are read only when the TCP peer is in `CORESDK_TRUSTED_PROXIES`,
and then walked from the right (the hop nearest to us) past every trusted proxy, so the first untrusted address is
the client. A client cannot push its own guess past a proxy that appends (as the gateway does, overwriting).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from coresdk.errors import ConfigError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_FOR = re.compile(r'(?i)(?:^|;)\s*for\s*=\s*("[^"]*"|[^;,\s]+)')


@dataclass(frozen=True)
class TrustedProxies:
    networks: tuple[Network, ...] = ()

    def trusts(self, address: str) -> bool:
        ip = _parse_ip(address)
        return ip is not None and any(ip in net for net in self.networks)

    def client_address(self, peer: str, headers: Mapping[str, str]) -> str:
        """The address of the client that started this request, as far as trusted proxies vouch for it."""
        if not self.networks or not self.trusts(peer):
            return peer
        chain = forwarded_chain(headers)
        for hop in reversed(chain):
            if not self.trusts(hop):  # written by the trusted proxy to its right (an obfuscated node stays opaque)
                return hop
        return chain[0] if chain else peer


@functools.lru_cache(maxsize=4096)  # the same few peers on every request; an address object is immutable
def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _strip_port(node: str) -> str:
    node = node.strip().strip('"')
    if node.startswith("["):  # [v6]:port or [v6]
        return node[1 : node.find("]")] if "]" in node else node
    if node.count(":") == 1:  # v4:port
        return node.split(":", 1)[0]
    return node


def forwarded_chain(headers: Mapping[str, str]) -> list[str]:
    """The client chain, leftmost first: from `Forwarded` when present, else from `X-Forwarded-For`."""
    forwarded = headers.get("Forwarded")
    if forwarded:
        return [_strip_port(m.group(1)) for element in forwarded.split(",") for m in [_FOR.search(element)] if m]
    xff = headers.get("X-Forwarded-For")
    if xff:
        return [_strip_port(part) for part in xff.split(",") if part.strip()]
    return []


def parse_trusted_proxies(text: str | None, variable: str = "CORESDK_TRUSTED_PROXIES") -> TrustedProxies:
    """A comma-separated list of CIDRs (or single addresses); empty or unset trusts no proxy."""
    if not text or not text.strip():
        return TrustedProxies()
    networks: list[Network] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigError(variable, f"{item!r} is not an IP address or CIDR") from None
    return TrustedProxies(tuple(networks))


def forwarded_for(address: str) -> str:
    """An RFC 7239 `for=` node: IPv6 addresses quoted in brackets, anything unparsable obfuscated."""
    ip = _parse_ip(address)
    if ip is None:
        return "for=unknown"
    return f'for="[{ip}]"' if ip.version == 6 else f"for={ip}"


def networks_text(networks: Iterable[Network]) -> str:
    return ",".join(str(n) for n in networks)
