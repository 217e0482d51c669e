"""The control plane's settings (CORESDK_* variables), read once and validated at start."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from coresdk.config.env import Env, split_host_port
from coresdk.config.sidecar import DEV_AUDIENCE, DEV_CONTROL_PLANE
from coresdk.errors import ConfigError


@dataclass(frozen=True)
class ControlPlaneConfig:
    env: str
    addr: str
    issuer: str
    audience: str
    data_dir: Path
    signing_key_path: Path
    access_token_ttl: int

    @property
    def development(self) -> bool:
        return self.env == "development"


def load_controlplane_config(environ: Mapping[str, str]) -> ControlPlaneConfig:
    env = Env(environ)
    mode = env.choice("CORESDK_ENV", "production", ("production", "development"))
    development = mode == "development"
    addr = env.text("CORESDK_CP_ADDR", "127.0.0.1:8080") or "127.0.0.1:8080"
    split_host_port(addr, "CORESDK_CP_ADDR")
    data_dir = Path(env.text("CORESDK_DATA_DIR", ".coresdk-data") or ".coresdk-data")
    key_path_value = env.raw("CORESDK_SIGNING_KEY_PATH")
    if key_path_value is None:
        if not development:
            raise ConfigError("CORESDK_SIGNING_KEY_PATH", "is required outside development (an RSA private key, PEM)")
        signing_key_path = data_dir / "signing-key.pem"
    else:
        signing_key_path = Path(key_path_value)
        if not development and not signing_key_path.is_file():
            raise ConfigError("CORESDK_SIGNING_KEY_PATH", f"file not found: {signing_key_path}")
    issuer = env.raw("CORESDK_ISSUER") or (DEV_CONTROL_PLANE if development else None)
    if issuer is None:
        raise ConfigError("CORESDK_ISSUER", "is required outside development (the public issuer URL)")
    return ControlPlaneConfig(
        env=mode,
        addr=addr,
        issuer=issuer,
        audience=env.text("CORESDK_TOKEN_AUDIENCE", DEV_AUDIENCE) or DEV_AUDIENCE,
        data_dir=data_dir,
        signing_key_path=signing_key_path,
        access_token_ttl=env.integer("CORESDK_ACCESS_TOKEN_TTL", 900, minimum=60, maximum=3600),
    )
