"""Where the sidecar is and how to reach it, read once from the variables the sidecar itself reads.

The application runs next to its sidecar, so it shares the sidecar's settings: `CORESDK_SIDECAR_ADDR`, and for an
address beyond this machine the `CORESDK_TLS_*` trio, here meaning this process's client certificate, its key, and
the CA the sidecar's certificate chains to. As on the sidecar, an address off loopback without mTLS is a start-up
error: bearer tokens never travel in the clear.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from coresdk.config.env import Env, is_loopback_host, split_host_port
from coresdk.errors import ConfigError

DEFAULT_ADDR = "[::1]:50051"
DEFAULT_TIMEOUT = 2.0
_TLS_VARIABLES = ("CORESDK_TLS_CERT_FILE", "CORESDK_TLS_KEY_FILE", "CORESDK_TLS_CA_FILE")


@dataclass(frozen=True)
class ClientTLS:
    cert_file: Path
    key_file: Path
    ca_file: Path

    def read(self) -> tuple[bytes, bytes, bytes]:
        """(CA, key, certificate chain) as grpc.ssl_channel_credentials wants them."""
        return self.ca_file.read_bytes(), self.key_file.read_bytes(), self.cert_file.read_bytes()


@dataclass(frozen=True)
class ClientSettings:
    address: str = DEFAULT_ADDR
    tls: ClientTLS | None = None
    # Deadline of one call, retries included: a request never waits on the sidecar longer than this.
    timeout_seconds: float = DEFAULT_TIMEOUT

    def __post_init__(self) -> None:
        if self.tls is None and not _is_local(self.address):
            raise ConfigError(
                "CORESDK_TLS_CERT_FILE",
                f"CORESDK_SIDECAR_ADDR={self.address} is not loopback; set CORESDK_TLS_CERT_FILE, "
                "CORESDK_TLS_KEY_FILE and CORESDK_TLS_CA_FILE (mTLS) to reach a sidecar beyond this machine",
            )
        if not 0 < self.timeout_seconds <= 60:
            raise ConfigError("timeout_seconds", f"must be in (0, 60], got {self.timeout_seconds}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str], timeout_seconds: float = DEFAULT_TIMEOUT) -> ClientSettings:
        env = Env(environ)
        address = env.text("CORESDK_SIDECAR_ADDR", DEFAULT_ADDR) or DEFAULT_ADDR
        given = [name for name in _TLS_VARIABLES if env.raw(name) is not None]
        tls = None
        if given:
            missing = [name for name in _TLS_VARIABLES if name not in given]
            if missing:
                raise ConfigError(
                    missing[0], "is required when any CORESDK_TLS_* variable is set (mTLS needs all three)"
                )
            cert, key, ca = (env.file(name) for name in _TLS_VARIABLES)
            assert cert is not None and key is not None and ca is not None
            tls = ClientTLS(cert, key, ca)
        return cls(address=address, tls=tls, timeout_seconds=timeout_seconds)


def _is_local(address: str) -> bool:
    if address.startswith("unix:"):
        return True
    return is_loopback_host(split_host_port(address, "CORESDK_SIDECAR_ADDR")[0])
