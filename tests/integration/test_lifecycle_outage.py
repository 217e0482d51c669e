"""The control plane's PostgreSQL goes away while it serves and comes back: meanwhile every answer that needs the
store is a prompt 503 with a JSON error (never a hang, never a success that was not stored), the JWKS is still
served from memory, and once the database is back the same process serves again without a restart."""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
import requests

from coresdk.v1 import audit_pb2, audit_pb2_grpc
from tests.support.controlplane import ControlPlaneProcess
from tests.support.gateway import GatewayProcess, Upstream
from tests.support.jwks_server import JwksServer
from tests.support.lifecycle import poll
from tests.support.pg_outage import bring_up, take_down
from tests.support.postgres import PostgresCluster
from tests.support.processes import SidecarProcess, trusting
from tests.support.tcp_proxy import TcpProxy
from tests.support.tokens import SigningKey, claims

BOUND = 15  # seconds any one answer may take during the outage


@pytest.fixture(scope="module")
def cluster() -> Iterator[PostgresCluster]:
    cluster = PostgresCluster()
    if cluster.external:
        cluster.stop()
        pytest.skip("takes its own private cluster down")
    yield cluster
    cluster.stop()


def _token(cp: ControlPlaneProcess, app: dict[str, str]) -> requests.Response:
    return requests.post(
        f"{cp.url}/v1/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(app["client_id"], app["client_secret"]),
        timeout=BOUND,
    )


def test_database_outage_is_refused_with_503_and_recovered_from(cluster: PostgresCluster, tmp_path: Path) -> None:
    cp = ControlPlaneProcess(tmp_path, cluster.new_database())
    try:
        app = cp.create_app(name="svc", grant_types=["client_credentials"], tenant_id="tenant-a")
        assert _token(cp, app).status_code == 200
        take_down(cluster)
        try:
            answers = {
                "token": _token(cp, app),
                "apps": cp.admin("GET", "/v1/oauth/apps"),
                "revocations": cp.admin("GET", "/api/v1/revocations"),
                "create": cp.admin(
                    "POST",
                    "/v1/oauth/apps",
                    {
                        "name": "x",
                        "grant_types": ["client_credentials"],
                        "tenant_id": "tenant-a",
                        "scopes": ["orders:read"],
                    },
                ),
            }
            for name, resp in answers.items():
                assert resp.status_code == 503, (name, resp.status_code, resp.text)
                assert resp.headers["Content-Type"].startswith("application/json"), name
                assert resp.json()["error"] == "temporarily_unavailable", (name, resp.text)
                assert "Retry-After" in resp.headers, name
            assert requests.get(f"{cp.url}/api/v1/jwks", timeout=BOUND).status_code == 200
        finally:
            bring_up(cluster)
        assert poll(lambda: _token(cp, app).status_code == 200, 20, every=0.3), cp.output()
        assert cp.admin("GET", "/v1/oauth/apps").status_code == 200
        assert "Traceback" not in cp.output().split("restore the pool connection floor")[0]
    finally:
        assert cp.stop() == 0, cp.output()


def _append(target: str, chain: str, first: int, count: int) -> list[str]:
    async def run() -> list[str]:
        async with grpc.aio.insecure_channel(target) as channel:
            stub = audit_pb2_grpc.AuditServiceStub(channel)
            ids = []
            for i in range(first, first + count):
                record = audit_pb2.AuditRecord(
                    actor=f"user-{i}",
                    action="orders.read",
                    resource=f"orders/{i}",
                    outcome="allow",
                    tenant_id="tenant-a",
                    chain_id=chain,
                )
                ids.append((await stub.Append(audit_pb2.AppendRequest(record=record), timeout=10)).id)
            return ids

    return asyncio.run(run())


def test_records_acknowledged_during_a_database_outage_reach_the_control_plane(
    cluster: PostgresCluster, tmp_path: Path
) -> None:
    """The sidecar acknowledges appends from its own journal while the control plane cannot store; once the
    database is back, its shipper delivers every one of them, the chain whole."""
    cp = ControlPlaneProcess(tmp_path, cluster.new_database())
    sidecar: SidecarProcess | None = None
    try:
        env = cp.sidecar_env()
        chain = env["CORESDK_AUDIT_CHAIN"]
        sidecar = SidecarProcess(env)
        acked = _append(sidecar.target, chain, 1, 5)
        take_down(cluster)
        try:
            acked += _append(sidecar.target, chain, 6, 10)
        finally:
            bring_up(cluster)

        def stored() -> set[str]:
            resp = cp.admin("GET", f"/api/v1/audit?chain_id={chain}&limit=1000")
            return {r["id"] for r in resp.json()["records"]} if resp.status_code == 200 else set()

        assert poll(lambda: set(acked) <= stored(), 25, every=0.5), (sorted(set(acked) - stored()), cp.output())
        verdict = cp.admin("GET", f"/api/v1/audit?verify_chain=true&chain_id={chain}&full=true").json()
        assert verdict["chain_valid"] is True, verdict
    finally:
        if sidecar is not None:
            assert sidecar.stop() == 0, sidecar.output()
        assert cp.stop() == 0, cp.output()


def test_a_quota_database_outage_is_refused_with_503_and_recovered_from(cluster: PostgresCluster) -> None:
    """The gateway's shared quota store (CORESDK_QUOTA_DATABASE_URL) goes away: a request that needs its quota is
    a prompt 503 with a JSON error, never let through unmetered; once it is back, requests pass again."""
    key = SigningKey.rsa("life-quota")
    jwks = JwksServer()
    jwks.keys = [key.jwk()]
    gateway = GatewayProcess(Upstream(), trusting(jwks.url), env={"CORESDK_QUOTA_DATABASE_URL": cluster.new_database()})
    headers = {"Authorization": f"Bearer {key.sign(claims())}"}

    def orders() -> requests.Response:
        return requests.get(f"{gateway.url}/v1/orders", headers=headers, timeout=BOUND)

    try:
        assert orders().status_code == 200
        take_down(cluster)
        try:
            for _ in range(2):
                resp = orders()
                assert resp.status_code == 503, resp.text
                assert resp.json()["error"] == "temporarily_unavailable", resp.text
        finally:
            bring_up(cluster)
        assert poll(lambda: orders().status_code == 200, 20, every=0.3)
    finally:
        gateway.stop()
        jwks.close()


def test_a_database_partition_is_refused_within_a_bound(cluster: PostgresCluster, tmp_path: Path) -> None:
    """The database stops answering (a network partition: connections open, no bytes): the 503 comes within a
    bound a client can wait (here 15 s), not after the driver's own timeouts add up."""
    url = cluster.new_database()
    proxy = TcpProxy("127.0.0.1", cluster.port)
    cp = ControlPlaneProcess(tmp_path, url.replace(f":{cluster.port}/", f":{proxy.port}/"))
    try:
        app = cp.create_app(name="svc", grant_types=["client_credentials"], tenant_id="tenant-a")
        assert _token(cp, app).status_code == 200
        proxy.silent.set()
        try:
            for _ in range(2):
                try:
                    resp = _token(cp, app)
                except requests.Timeout:
                    pytest.fail(f"no answer within {BOUND} s during the partition")
                assert resp.status_code == 503, resp.text
        finally:
            proxy.silent.clear()
    finally:
        cp.stop()
        proxy.close()


def test_a_partition_behind_two_replicas_is_refused_through_the_gateway(
    cluster: PostgresCluster, tmp_path: Path
) -> None:
    """As deployed: the public gateway in front, two control-plane replicas on one PostgreSQL behind it. The
    database stops answering: a token request through the gateway, and one to each replica, is a 503 JSON error
    within the bound (the gateway relays the control plane's answer, it does not time out on its own first); once
    the database answers again, the same client gets a token through the gateway."""
    url = cluster.new_database()
    proxy = TcpProxy("127.0.0.1", cluster.port)
    behind = url.replace(f":{cluster.port}/", f":{proxy.port}/")
    first = ControlPlaneProcess(tmp_path / "a", behind)
    second = ControlPlaneProcess(tmp_path / "b", behind, CORESDK_SIGNING_KEY_PATH=first.env["CORESDK_SIGNING_KEY_PATH"])
    chain = "partition-gateway"
    gateway = GatewayProcess(
        Upstream(),
        first.sidecar_env(CORESDK_AUDIT_CHAIN=chain),  # trusts the control plane, with a credential of its own
        cp_url=first.url,
        env={"CORESDK_GATEWAY_AUDIT_CHAIN": chain},
    )
    try:
        app = first.create_app(name="svc", grant_types=["client_credentials"], tenant_id="tenant-a")

        def through_gateway() -> requests.Response:
            return requests.post(
                f"{gateway.url}/v1/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(app["client_id"], app["client_secret"]),
                timeout=BOUND,
            )

        assert through_gateway().status_code == 200
        proxy.silent.set()
        try:
            for ask in (through_gateway, lambda: _token(first, app), lambda: _token(second, app)):
                try:
                    resp = ask()
                except requests.Timeout:
                    pytest.fail(f"no answer within {BOUND} s during the partition")
                assert resp.status_code == 503, resp.text
                assert resp.json()["error"] == "temporarily_unavailable", resp.text
        finally:
            proxy.silent.clear()
        assert poll(lambda: through_gateway().status_code == 200, 30, every=0.5)
    finally:
        gateway.stop()
        second.stop()
        first.stop()
        proxy.close()


def test_two_sigterms_stop_a_control_plane_whose_database_is_partitioned(
    cluster: PostgresCluster, tmp_path: Path
) -> None:
    url = cluster.new_database()
    proxy = TcpProxy("127.0.0.1", cluster.port)
    cp = ControlPlaneProcess(tmp_path, url.replace(f":{cluster.port}/", f":{proxy.port}/"))
    assert cp.proc is not None
    try:
        app = cp.create_app(name="svc", grant_types=["client_credentials"], tenant_id="tenant-a")
        proxy.silent.set()
        client = threading.Thread(target=lambda: _answer_or_none(cp, app), daemon=True)
        client.start()
        time.sleep(0.5)  # the request is waiting on the store
        cp.proc.terminate()
        time.sleep(0.5)
        cp.proc.terminate()
        try:
            code: int | None = cp.proc.wait(BOUND)
        except subprocess.TimeoutExpired:
            code = None
        assert code == 0, f"exit status {code} (None: still stopping after {BOUND} s)"
    finally:
        if cp.proc.poll() is None:
            cp.proc.kill()
            cp.proc.wait()
        proxy.close()


def _answer_or_none(cp: ControlPlaneProcess, app: dict[str, str]) -> requests.Response | None:
    try:
        return _token(cp, app)
    except requests.RequestException:
        return None
