"""Configuration of signed tool manifests (read once at start-up by the service that fronts MCP servers).

CORESDK_MANIFEST_KEYS: path of the trust file {"keys": ["ed25519:<base64>", ...], "revoked": ["<manifest id>"]}.
A file rather than inline keys because keys and revocations change together and must be read together.
CORESDK_MANIFEST_DIR: directory of signed manifests (`*.json`, one per tool).

Fail closed: a service with MCP routes must call this with required=True; then neither variable may be missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from coresdk.config.env import Env
from coresdk.errors import ConfigError
from coresdk.mcp.manifest import TrustStore, load_trust_store


def load_manifest_trust(environ: Mapping[str, str], *, required: bool) -> TrustStore | None:
    env = Env(environ)
    why = "is required: MCP tool calls are trusted only with signed manifests"
    trust_file = env.file("CORESDK_MANIFEST_KEYS")
    manifest_dir = env.text("CORESDK_MANIFEST_DIR")
    if trust_file is None and manifest_dir is None and not required:
        return None
    if trust_file is None:
        raise ConfigError("CORESDK_MANIFEST_KEYS", why)
    if manifest_dir is None:
        raise ConfigError("CORESDK_MANIFEST_DIR", why)
    return load_trust_store(trust_file, Path(manifest_dir))
