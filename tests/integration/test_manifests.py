"""The shipped deploy/k8s manifests start (issue 14): the control plane, the gateway and the orders sidecar run with
exactly their containers' environment from the manifests, and serve.

What differs from a cluster, and why it is honest: the Service names (coresdk-controlplane:8080,
orders.default.svc:8080) resolve to loopback ports through a test-only resolver (tests/support/resolver, loaded
with the service), as cluster DNS would resolve them, while every URL and CORESDK_PLAINTEXT_HOSTS stay as written;
each process listens on a free loopback port instead of its pod's own address (a pod has a network of its own, these
processes share one); Secrets are the test's values and volumes are temporary directories. The sidecar's Vault is not
part of this test: vault.example.com resolves to nothing, so the sidecar serves authentication but not secrets.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import requests

from coresdk.v1 import auth_pb2, auth_pb2_grpc
from tests.support.controlplane import ADMIN_TOKEN
from tests.support.gateway import Upstream
from tests.support.manifests import RESOLVER, container, container_env, mounted_volumes
from tests.support.ports import free_port
from tests.support.postgres import PostgresCluster
from tests.support.processes import ROOT

SERVER_SECRET = "manifest-server-secret-0123456789abcdefghijkl"


class Service:
    def __init__(self, module: str, env: dict[str, str], hosts: dict[str, int], probe: str, log: Path) -> None:
        base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
        base["PYTHONPATH"] = f"{RESOLVER}{os.pathsep}{ROOT}"
        base["TEST_HOSTS_MAP"] = ",".join(f"{name}=127.0.0.1:{port}" for name, port in hosts.items())
        self.log = log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", module], env={**base, **env}, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{module} exited {self.proc.returncode}:\n{log.read_text()}")
            try:
                if requests.get(probe, timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{module} not ready at {probe}:\n{log.read_text()}")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(15)


@pytest.fixture(scope="module")
def deployment(postgres: PostgresCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    root = tmp_path_factory.mktemp("k8s")
    mounted_volumes(root)
    secrets = {
        ("coresdk-controlplane", "database-url"): postgres.new_database(),
        ("coresdk-controlplane", "admin-token"): ADMIN_TOKEN,
        ("coresdk-controlplane", "server-secret"): SERVER_SECRET,
        ("coresdk-gateway", "quota-database-url"): postgres.new_database(),
        ("orders-approle", "role-id"): "orders-role-id",
    }
    cp_port, upstream = free_port(), Upstream()
    hosts = {"coresdk-controlplane:8080": cp_port, "orders.default.svc:8080": upstream.port}
    cp_env = container_env(container("coresdk-controlplane", "controlplane"), secrets, root)
    cp_env["CORESDK_CP_ADDR"] = f"127.0.0.1:{cp_port}"
    started = [Service("controlplane", cp_env, hosts, f"http://127.0.0.1:{cp_port}/healthz", root / "cp.log")]
    try:

        def enrol(name: str, prefix: str) -> str:
            body = {"name": name, "prefixes": [prefix]}
            resp = requests.post(
                f"http://127.0.0.1:{cp_port}/api/v1/sidecars",
                json=body,
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                timeout=10,
            )
            assert resp.status_code == 201, resp.text
            return str(resp.json()["credential"])

        secrets[("coresdk-gateway", "cp-credential")] = enrol("gateway", "gateway-")
        secrets[("orders-coresdk", "cp-credential")] = enrol("orders", "sidecar-")
        gw_port = free_port()
        gw_env = container_env(container("coresdk-gateway", "gateway"), secrets, root)
        gw_env["CORESDK_GATEWAY_ADDR"] = f"127.0.0.1:{gw_port}"
        started.append(Service("gateway", gw_env, hosts, f"http://127.0.0.1:{gw_port}/readyz", root / "gw.log"))
        health, grpc_port = free_port(), free_port("::1")
        sc_env = container_env(container("orders", "coresdk-sidecar"), secrets, root)
        sc_env.update({"CORESDK_HEALTH_ADDR": f"127.0.0.1:{health}", "CORESDK_SIDECAR_ADDR": f"[::1]:{grpc_port}"})
        started.append(Service("sidecar", sc_env, hosts, f"http://127.0.0.1:{health}/healthz", root / "sc.log"))
        yield {"cp": f"http://127.0.0.1:{cp_port}", "gateway": f"http://127.0.0.1:{gw_port}", "sidecar": grpc_port}
    finally:
        for service in reversed(started):
            service.stop()


def _token(cp: str) -> str:
    app = requests.post(
        f"{cp}/v1/oauth/apps",
        json={
            "name": "orders client",
            "scopes": ["orders:read"],
            "grant_types": ["client_credentials"],
            "tenant_id": "tenant-a",
        },
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=10,
    ).json()
    resp = requests.post(
        f"{cp}/v1/oauth/token",
        data={"grant_type": "client_credentials", "scope": "orders:read"},
        auth=(app["client_id"], app["client_secret"]),
        timeout=10,
    )
    assert resp.status_code == 200, resp.text
    return str(resp.json()["access_token"])


def test_the_gateway_from_the_manifest_serves_through_the_named_plaintext_hosts(deployment: dict[str, object]) -> None:
    """Its JWKS and revocations come from http://coresdk-controlplane:8080, its upstream is
    http://orders.default.svc:8080: both allowed only because the manifest names them."""
    token = _token(str(deployment["cp"]))
    resp = requests.get(f"{deployment['gateway']}/v1/orders", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.json()["path"] == "/v1/orders"
    refused = requests.get(f"{deployment['gateway']}/v1/orders", headers={"Authorization": "Bearer x.y.z"}, timeout=10)
    assert refused.status_code == 401


def test_the_sidecar_from_the_manifest_authenticates_control_plane_tokens(deployment: dict[str, object]) -> None:
    token = _token(str(deployment["cp"]))
    with grpc.insecure_channel(f"[::1]:{deployment['sidecar']}") as channel:
        principal = auth_pb2_grpc.AuthServiceStub(channel).Authenticate(
            auth_pb2.AuthenticateRequest(token=token), timeout=10
        )
    assert principal.issuer == "https://auth.example.com" and principal.tenant_id == "tenant-a"
