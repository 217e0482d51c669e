"""A real control plane process in production mode for tests, with an HTTP helper for its admin API."""

from __future__ import annotations

import copy
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.balancer import RoundRobinBalancer
from tests.support.ports import free_port
from tests.support.processes import ROOT

ADMIN_TOKEN = "test-admin-token-0123456789abcdefghijklmnop"
SIDECAR_TOKEN = "test-sidecar-token-0123456789abcdefghijklmn"


class ControlPlaneProcess:
    def __init__(self, data_dir: Path, database_url: str, **extra_env: str) -> None:
        self.data_dir = data_dir
        self.database_url = database_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        data_dir.mkdir(parents=True, exist_ok=True)
        key_path = data_dir / "initial-signing-key.pem"
        if not key_path.exists():
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            key_path.write_bytes(
                key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                )
            )
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CORESDK_") and k != "DATABASE_URL"}
        self.env.update(
            {
                "PYTHONPATH": str(ROOT),
                "CORESDK_ENV": "production",
                "CORESDK_CP_ADDR": f"127.0.0.1:{self.port}",
                "CORESDK_ISSUER": self.url,
                "CORESDK_DATA_DIR": str(data_dir),
                "DATABASE_URL": database_url,
                "CPOD_ADMIN_TOKEN": ADMIN_TOKEN,
                "CORESDK_SIDECAR_TOKEN": SIDECAR_TOKEN,
                "CORESDK_SERVER_SECRET": "test-server-secret-0123456789abcdefghijklmnopq",
                "CORESDK_SIGNING_KEY_PATH": str(key_path),
                "CORESDK_RATE_CLIENT_RPS": "1000",
                "CORESDK_RATE_CLIENT_BURST": "1000",
                "CORESDK_RATE_IP_RPS": "5000",
                "CORESDK_RATE_IP_BURST": "5000",
                "CORESDK_RATE_LOGIN_PER_MIN": "1000",
                # a rotated key signs one second after it is published (production: one JWKS max-age, 300 s)
                "CORESDK_KEY_ACTIVATION_DELAY": "1",
            }
        )
        if database_url.startswith("sqlite:///"):  # production refuses SQLite unless single-node is stated
            self.env["CORESDK_CP_SQLITE_SINGLE_NODE"] = "true"
        self.env.update(extra_env)
        self.log_path = data_dir / f"controlplane-{self.port}.log"
        self._chain_credentials: dict[str, str] = {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "controlplane"], env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"control plane exited {self.proc.returncode}:\n{self.output()}")
            try:
                if requests.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.proc.kill()  # never left running after the test: a start that hangs is the failure reported here
        self.proc.wait()
        raise RuntimeError(f"control plane not ready:\n{self.output()}")

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)

    def restart(self) -> None:
        assert self.stop() == 0, self.output()
        self.start()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def admin(self, method: str, path: str, json: Any = None, token: str = ADMIN_TOKEN) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.request(method, f"{self.url}{path}", json=json, headers=headers, timeout=10)

    def enrol_sidecar(
        self, chains: Sequence[str] = (), prefixes: Sequence[str] = (), name: str = "test-sidecar"
    ) -> str:
        """A new sidecar credential bound to these chain ids and prefixes (POST /api/v1/sidecars)."""
        body = {"name": name, "chains": list(chains), "prefixes": list(prefixes)}
        resp = self.admin("POST", "/api/v1/sidecars", body)
        assert resp.status_code == 201, resp.text
        credential: str = resp.json()["credential"]
        return credential

    def chain_credential(self, chain_id: str) -> str:
        """The credential of a sidecar enrolled for exactly this chain (enrolled on first use, then reused)."""
        if chain_id not in self._chain_credentials:
            self._chain_credentials[chain_id] = self.enrol_sidecar([chain_id], name=f"writer-of-{chain_id}"[:128])
        return self._chain_credentials[chain_id]

    def sidecar_env(self, **extra: str) -> dict[str, str]:
        """Settings of a sidecar that trusts this control plane: its JWKS and issuer, revocations, audit shipping with
        a credential of its own, enrolled for its chain (a fresh chain id unless CORESDK_AUDIT_CHAIN is given)."""
        chain = extra.get("CORESDK_AUDIT_CHAIN") or f"test-chain-{secrets.token_hex(4)}"
        return {
            "CORESDK_JWKS_URI": f"{self.url}/api/v1/jwks",
            "CORESDK_EXPECTED_ISSUER": self.env["CORESDK_ISSUER"],
            "CORESDK_EXPECTED_AUDIENCE": "coresdk",
            "CORESDK_CP_URL": self.url,
            "CORESDK_AUDIT_CHAIN": chain,
            "CORESDK_CP_TOKEN": extra.get("CORESDK_CP_TOKEN") or self.chain_credential(chain),
            **extra,
        }

    def create_app(self, **fields: Any) -> dict[str, Any]:
        body = {"name": "test app", "scopes": ["orders:read", "orders:write"], **fields}
        resp = self.admin("POST", "/v1/oauth/apps", body)
        assert resp.status_code == 201, resp.text
        result: dict[str, Any] = resp.json()
        return result

    def create_user(
        self, subject: str, password: str = "correct horse battery staple", **fields: Any
    ) -> dict[str, Any]:
        body = {"subject": subject, "tenant_id": "tenant-a", "roles": ["editor"], "password": password, **fields}
        resp = self.admin("POST", "/v1/users", body)
        assert resp.status_code == 201, resp.text
        result: dict[str, Any] = resp.json()
        return result

    def client_token(self, app: dict[str, Any], scope: str = "") -> str:
        """An access token from the client_credentials grant (client_secret_basic)."""
        data = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
        resp = requests.post(
            f"{self.url}/v1/oauth/token", data=data, auth=(app["client_id"], app["client_secret"]), timeout=10
        )
        assert resp.status_code == 200, resp.text
        token: str = resp.json()["access_token"]
        return token

    def events(self, **params: str) -> list[dict[str, Any]]:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        resp = self.admin("GET", f"/api/v1/token-events?{query}")
        assert resp.status_code == 200, resp.text
        events: list[dict[str, Any]] = resp.json()["events"]
        return events


class ReplicaSet:
    """N control-plane processes on one PostgreSQL database behind a round-robin balancer (a Service), sharing what
    replicas share in a deployment: the database, the server secret, the initial signing key and the issuer (the
    balancer's URL). `front` is the set as a client sees it: the same helpers, every request through the balancer."""

    def __init__(self, data_dir: Path, database_url: str, replicas: int = 3, **extra_env: str) -> None:
        self.balancer = RoundRobinBalancer()
        self.replicas: list[ControlPlaneProcess] = []
        key_path = data_dir / "shared-signing-key.pem"
        data_dir.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        for i in range(replicas):
            env = {"CORESDK_ISSUER": self.balancer.url, "CORESDK_SIGNING_KEY_PATH": str(key_path), **extra_env}
            self.replicas.append(ControlPlaneProcess(data_dir / f"replica-{i}", database_url, **env))
        self.balancer.backends = [("127.0.0.1", cp.port) for cp in self.replicas]
        self.front = copy.copy(self.replicas[0])
        self.front.url = self.balancer.url
        self.front._chain_credentials = {}

    def by_pid(self, pid: int) -> ControlPlaneProcess:
        return next(cp for cp in self.replicas if cp.proc is not None and cp.proc.pid == pid)

    def stop(self) -> None:
        for cp in self.replicas:
            if cp.proc is not None and cp.proc.poll() is None:
                cp.stop()
        self.balancer.close()
