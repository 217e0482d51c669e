"""Where the services listen: the sidecar and its health port only on loopback, the control plane never public.

Configuration says where a service should bind; the kernel's socket table (/proc/net/tcp, tcp6) says where
something actually listens. Both are checked: a sidecar configured for loopback but listening on every interface
(an old process, a port collision) is exactly what an operator needs to hear about.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from coresdk.doctor.model import Check, Context, Status, fail, ok, warn

LISTEN = "0A"


def _ipv4(hex_addr: str) -> str:
    return str(ipaddress.IPv4Address(bytes.fromhex(hex_addr)[::-1]))


def _ipv6(hex_addr: str) -> str:
    raw = bytes.fromhex(hex_addr)
    return str(ipaddress.IPv6Address(b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))))


def listeners(port: int, proc_net: Path = Path("/proc/net")) -> list[str]:
    """Addresses with a TCP socket listening on port, from this network namespace's socket table."""
    found: list[str] = []
    for name, decode in (("tcp", _ipv4), ("tcp6", _ipv6)):
        try:
            lines = (proc_net / name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 4 or fields[3] != LISTEN:
                continue
            addr, _, hex_port = fields[1].partition(":")
            if int(hex_port, 16) == port:
                found.append(decode(addr))
    return sorted(set(found))


def _split(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    return host.strip("[]"), int(port)


def _kind(host: str) -> str:
    if host in ("", "0.0.0.0", "::"):
        return "wildcard"
    if host == "localhost":
        return "loopback"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return "name"
    if ip.is_loopback:
        return "loopback"
    return "public" if ip.is_global else "private"


def _loopback_only(ctx: Context, variable: str, default: str, what: str) -> tuple[Status, str, str]:
    addr = ctx.get(variable, default)
    host, port = _split(addr)
    if _kind(host) != "loopback":
        return fail(
            f"{variable}={addr} is not a loopback address", f"set {variable} to [::1]:{port} or 127.0.0.1:{port}"
        )
    live = listeners(port)
    exposed = [a for a in live if _kind(a) != "loopback"]
    if exposed:
        return fail(
            f"port {port} is listening on {', '.join(exposed)}",
            f"stop whatever listens on port {port} outside loopback; the {what} must be reachable only from this host",
        )
    if not live:
        return warn(f"configured {addr}; nothing listens on port {port} here", f"run the doctor where the {what} runs")
    return ok(f"{addr}, listening on {', '.join(live)} only")


def sidecar_loopback(ctx: Context) -> tuple[Status, str, str]:
    return _loopback_only(ctx, "CORESDK_SIDECAR_ADDR", "[::1]:50051", "sidecar")


def health_loopback(ctx: Context) -> tuple[Status, str, str]:
    return _loopback_only(ctx, "CORESDK_HEALTH_ADDR", "127.0.0.1:9091", "health and metrics port")


def controlplane_exposure(ctx: Context) -> tuple[Status, str, str]:
    addr = ctx.get("CORESDK_CP_ADDR", "127.0.0.1:8080")
    host, port = _split(addr)
    public = [a for a in listeners(port) if _kind(a) == "public"]
    kind = _kind(host)
    if kind == "public" or public:
        return fail(
            f"the control plane listens on a public address ({', '.join(public) or host})",
            "bind CORESDK_CP_ADDR to loopback or an internal address; expose only OAuth endpoints via the gateway",
        )
    if kind in ("wildcard", "name"):
        return warn(
            f"CORESDK_CP_ADDR={addr} binds every interface",
            "keep it behind a firewall or a NetworkPolicy that admits only the gateway and the sidecars",
        )
    return ok(f"{addr} ({kind})")


CHECKS = [
    Check("sidecar.loopback", "Sidecar gRPC listens on loopback only", sidecar_loopback),
    Check("health.loopback", "Health/metrics port on loopback only", health_loopback),
    Check("controlplane.exposure", "Control plane not on a public interface", controlplane_exposure),
]
