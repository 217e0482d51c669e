"""`coresdk doctor` against a real deployment (control plane, sidecar, gateway, OpenBao, a syslog sink): a safe
configuration passes, and each deliberately broken setting fails exactly its own check."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from aiohttp import web
from cryptography.hazmat.primitives import serialization

from coresdk.doctor.model import Context, Status
from coresdk.doctor.report import CHECKS, run_checks
from tests.support.collectors import SyslogCollector
from tests.support.controlplane import ADMIN_TOKEN, ControlPlaneProcess
from tests.support.gateway import GatewayProcess, Upstream
from tests.support.oauth import REDIRECT
from tests.support.openbao import OpenBao
from tests.support.ports import free_port
from tests.support.processes import ROOT, SidecarProcess
from tests.support.tokens import SigningKey

PLANS = {"plans": {"standard": {"requests_per_minute": 600, "burst": 50}}, "default_plan": "standard"}


class Deployment:
    def __init__(self, tmp: Path, bao: OpenBao) -> None:
        self.syslog = SyslogCollector()
        self.db = tmp / "cp.db"
        self.cp = ControlPlaneProcess(
            tmp / "cp",
            f"sqlite:///{self.db}",
            CORESDK_AUDIT_SYSLOG_ADDR=f"127.0.0.1:{self.syslog.port}",
            CORESDK_AUDIT_RETENTION_DAYS="400",
            CORESDK_TRUSTED_PROXIES="127.0.0.1/32",
        )
        self.cp.create_app(
            name="web",
            scopes=["orders:read"],
            grant_types=["authorization_code", "refresh_token"],
            redirect_uris=[REDIRECT],
        )
        self.cp.create_app(name="batch", scopes=["orders:read"], grant_types=["client_credentials"])
        # the sidecar is enrolled for its own chain and the gateway's, which it writes for the gateway
        chains = {"CORESDK_AUDIT_CHAIN": "doctor-sidecar", "CORESDK_GATEWAY_AUDIT_CHAIN": "doctor-gateway"}
        credential = self.cp.enrol_sidecar(sorted(chains.values()), name="doctor")
        self.sidecar = SidecarProcess(
            self.cp.sidecar_env(
                **bao.approle_env("doctor"),
                CORESDK_SECRET_PATHS="apps/",
                CORESDK_AUDIT_CHAIN=chains["CORESDK_AUDIT_CHAIN"],
                CORESDK_CP_TOKEN=credential,
            )
        )
        self.upstream = Upstream()
        self.routes = tmp / "routes.json"  # the example map with plans named, as production needs
        self.routes.write_text(json.dumps({**json.loads((ROOT / "config" / "routes.json").read_text()), **PLANS}))
        self.gateway = GatewayProcess(
            self.upstream, self.sidecar, cp_url=self.cp.url, routes_file=self.routes, env=chains
        )
        # One refused request: the gateway audits it, the sidecar ships it, the control plane chains it.
        assert requests.get(f"{self.gateway.url}/v1/orders", timeout=10).status_code == 401
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            report = self.cp.admin("GET", "/api/v1/audit?verify_chain=true").json()
            if "doctor-gateway" in {c["chain_id"] for c in report["chains"]}:
                break
            time.sleep(0.2)
        self.env: dict[str, str] = {
            **self.cp.env,
            **self.sidecar.env,
            "CORESDK_CP_URL": self.cp.url,
            "CORESDK_GATEWAY_URL": self.gateway.url,
            "CORESDK_ROUTES_FILE": str(self.routes),
            "CPOD_ADMIN_TOKEN": ADMIN_TOKEN,
        }
        self.env.pop("CORESDK_SIDECAR_TOKEN")  # a production deployment has no shared sidecar token
        self.scan = [ROOT / "config"]

    def doctor(self, scan: list[Path] | None = None, **overrides: str | None) -> dict[str, Any]:
        env = {**self.env, **{k: v for k, v in overrides.items() if v is not None}}
        for name in [k for k, v in overrides.items() if v is None]:
            env.pop(name, None)
        return {r.id: r for r in run_checks(Context(env, self.scan if scan is None else scan))}

    def stop(self) -> None:
        self.gateway.stop()
        self.sidecar.stop()
        self.cp.stop()
        self.syslog.close()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, bao: OpenBao) -> Iterator[Deployment]:
    d = Deployment(tmp_path_factory.mktemp("doctor"), bao)
    yield d
    d.stop()


def failing(results: dict[str, Any]) -> set[str]:
    return {i for i, r in results.items() if r.status is Status.FAIL}


def test_a_safe_deployment_passes_every_check(deployment: Deployment) -> None:
    results = deployment.doctor()
    assert set(results) == {c.id for c in CHECKS}
    assert failing(results) == set(), {i: r.detail for i, r in results.items() if r.status is Status.FAIL}
    assert {i for i, r in results.items() if r.status is Status.WARN} == set()


def test_the_cli_prints_a_table_or_json_and_exits_by_the_worst_result(deployment: Deployment) -> None:
    env = {**os.environ, **deployment.env, "PYTHONPATH": str(ROOT)}
    cli = [sys.executable, "-m", "coresdk.cli", "doctor", "--scan", str(ROOT / "config")]
    table = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert table.returncode == 0, table.stdout + table.stderr
    assert "PASS  sidecar.loopback" in table.stdout and "FAIL" not in table.stdout
    broken = {**env, "CORESDK_ENV": "development"}
    out = subprocess.run([*cli, "--json"], env=broken, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 1
    doc = json.loads(out.stdout)
    assert doc["ok"] is False
    [bad] = [c for c in doc["checks"] if c["status"] == "FAIL"]
    assert bad["id"] == "env.production" and bad["remediation"]


def listening(host: str) -> tuple[socket.socket, int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((host, 0))
    sock.listen()
    return sock, sock.getsockname()[1]


def test_sidecar_listening_beyond_loopback_fails(deployment: Deployment) -> None:
    sock, port = listening("0.0.0.0")
    try:
        results = deployment.doctor(CORESDK_SIDECAR_ADDR=f"[::1]:{port}")
        # masking is probed at that address too, and nothing there speaks gRPC
        assert failing(results) == {"sidecar.loopback", "masking.active"}
        assert "0.0.0.0" in results["sidecar.loopback"].detail
    finally:
        sock.close()
    assert failing(deployment.doctor(CORESDK_SIDECAR_ADDR=f"0.0.0.0:{port}")) >= {"sidecar.loopback"}


def test_health_port_on_every_interface_fails(deployment: Deployment) -> None:
    assert failing(deployment.doctor(CORESDK_HEALTH_ADDR="0.0.0.0:9091")) == {"health.loopback"}


def test_control_plane_on_a_public_address_fails(deployment: Deployment) -> None:
    assert failing(deployment.doctor(CORESDK_CP_ADDR="93.184.216.34:8080")) == {"controlplane.exposure"}
    assert deployment.doctor(CORESDK_CP_ADDR="0.0.0.0:8080")["controlplane.exposure"].status is Status.WARN


def test_development_mode_fails(deployment: Deployment) -> None:
    assert failing(deployment.doctor(CORESDK_ENV="development")) == {"env.production"}


def test_missing_audience_fails(deployment: Deployment) -> None:
    assert failing(deployment.doctor(CORESDK_EXPECTED_AUDIENCE=None)) == {"jwks.configured"}


def test_unreachable_jwks_fails(deployment: Deployment) -> None:
    results = deployment.doctor(CORESDK_JWKS_URI=f"{deployment.cp.url}/api/v1/no-such-jwks")
    assert failing(results) == {"jwks.reachable"}


def test_long_token_lifetime_fails(deployment: Deployment) -> None:
    assert failing(deployment.doctor(CORESDK_ACCESS_TOKEN_TTL="7200")) == {"tokens.policy"}


def test_an_old_client_secret_fails(deployment: Deployment) -> None:
    conn = sqlite3.connect(deployment.db)
    try:
        with conn:
            conn.execute("UPDATE client_secrets SET created_at = created_at - 100 * 86400")
        results = deployment.doctor()
        assert failing(results) == {"oauth.apps"}
        assert "100 days old" in results["oauth.apps"].detail
    finally:
        with conn:
            conn.execute("UPDATE client_secrets SET created_at = created_at + 100 * 86400")
        conn.close()


class LaxAuthorizationServer:
    """Another authorization server in front of the apps (the doctor only sees its answers). `plain` makes it
    advertise plain PKCE; otherwise it enforces a challenge but, like many, does not insist on `state`."""

    def __init__(self, plain: bool) -> None:
        import asyncio
        import threading

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        methods = ["S256", "plain"] if plain else ["S256"]

        async def metadata(_: web.Request) -> web.Response:
            return web.json_response({"code_challenge_methods_supported": methods})

        async def authorize(request: web.Request) -> web.Response:
            if "code_challenge" not in request.query or request.query.get("code_challenge_method") != "S256":
                raise web.HTTPFound(request.query["redirect_uri"] + "?error=invalid_request")
            return web.Response(text="<form>password</form>", content_type="text/html")

        async def start() -> web.AppRunner:
            app = web.Application()
            app.router.add_get("/.well-known/oauth-authorization-server", metadata)
            app.router.add_get("/v1/oauth/authorize", authorize)
            app.router.add_get("/v1/oauth/apps", self._apps)
            runner = web.AppRunner(app)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", self.port).start()
            return runner

        self._runner = asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)

    async def _apps(self, _: web.Request) -> web.Response:
        app = {"client_id": "c1", "grant_types": ["authorization_code"], "redirect_uris": [REDIRECT], "scopes": ["a"]}
        return web.json_response({"apps": [app]})

    def close(self) -> None:
        import asyncio

        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)


@pytest.mark.parametrize(("plain", "expected"), [(True, "plain"), (False, "without state")])
def test_an_authorization_server_without_pkce_or_state_fails(
    deployment: Deployment, plain: bool, expected: str
) -> None:
    server = LaxAuthorizationServer(plain)
    try:
        results = run_checks(Context({**deployment.env, "CORESDK_CP_URL": server.url}), ["oauth.pkce"])
        assert [r.status for r in results] == [Status.FAIL]
        assert expected in results[0].detail
    finally:
        server.close()


def test_long_lived_refresh_tokens_fail(deployment: Deployment) -> None:
    assert failing(deployment.doctor(CORESDK_REFRESH_ABSOLUTE_TTL=str(180 * 86400))) == {"oauth.refresh"}
    assert deployment.doctor(CORESDK_REFRESH_GRACE="5")["oauth.refresh"].status is Status.WARN


def test_a_secret_in_the_clear_in_the_store_fails(deployment: Deployment, tmp_path: Path) -> None:
    copy = tmp_path / "copy.db"
    with sqlite3.connect(deployment.db) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)  # the live database is in WAL mode: a file copy would miss recent pages
    pem = (
        SigningKey.rsa("leak", "RS256")
        .private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        .decode()
    )
    conn = sqlite3.connect(copy)
    with conn:
        conn.execute("UPDATE signing_keys SET private_key_enc = ?", (pem,))
    conn.close()
    results = deployment.doctor(DATABASE_URL=f"sqlite:///{copy}")
    assert failing(results) == {"secrets.at_rest"}
    assert "signing_keys.private_key_enc" in results["secrets.at_rest"].detail
    conn = sqlite3.connect(copy)
    with conn:
        conn.execute("UPDATE signing_keys SET private_key_enc = 'v1.AAAA'")
        conn.execute("UPDATE oauth_apps SET name = ?", ("token ghp_" + "a1B2" * 9,))
    conn.close()
    results = deployment.doctor(DATABASE_URL=f"sqlite:///{copy}")
    assert failing(results) == {"secrets.at_rest"} and "API_KEY" in results["secrets.at_rest"].detail


def test_a_hardcoded_secret_in_configuration_fails(deployment: Deployment, tmp_path: Path) -> None:
    config = tmp_path / "config"
    shutil.copytree(ROOT / "config", config)
    (config / "app.env").write_text("# the app\nLOG_LEVEL=info\nJWT_SECRET=supersecret123\n")
    results = deployment.doctor(scan=[config])
    assert failing(results) == {"secrets.hardcoded"}
    assert "app.env:3 sets JWT_SECRET" in results["secrets.hardcoded"].detail
    (config / "app.env").write_text("JWT_SECRET_FILE=/run/secrets/jwt\n")
    (config / "notes.json").write_text(json.dumps({"key": "AKIAIOSFODNN7EXAMPLE"}))
    assert failing(deployment.doctor(scan=[config])) == {"secrets.hardcoded"}


def test_wrong_approle_credentials_fail(deployment: Deployment) -> None:
    assert failing(deployment.doctor(CORESDK_VAULT_SECRET_ID="00000000-0000-0000-0000-000000000000")) == {
        "vault.approle"
    }
    assert failing(deployment.doctor(VAULT_ADDR=None)) == {"vault.approle"}


def test_a_tampered_audit_chain_fails(deployment: Deployment) -> None:
    conn = sqlite3.connect(deployment.db)
    chain, canonical = conn.execute("SELECT chain_id, canonical FROM audit_records WHERE seq = 1 LIMIT 1").fetchone()
    edited = canonical.replace('"actor":"', '"actor":"mallory-', 1)
    assert edited != canonical
    try:
        with conn:
            conn.execute("UPDATE audit_records SET canonical = ? WHERE chain_id = ? AND seq = 1", (edited, chain))
        results = deployment.doctor()
        assert failing(results) == {"audit.chain"}
        assert f"chain {chain} broken at seq 1" in results["audit.chain"].detail
    finally:
        with conn:
            conn.execute("UPDATE audit_records SET canonical = ? WHERE chain_id = ? AND seq = 1", (canonical, chain))
        conn.close()
    assert "audit.chain" not in failing(deployment.doctor())


def test_no_off_box_sink_fails(deployment: Deployment) -> None:
    assert failing(deployment.doctor(CORESDK_AUDIT_SYSLOG_ADDR=None)) == {"audit.offbox"}


def test_retention_below_the_framework_fails(deployment: Deployment) -> None:
    assert failing(deployment.doctor(CORESDK_COMPLIANCE_FRAMEWORK="hipaa")) == {"audit.retention"}
    assert failing(deployment.doctor(CORESDK_AUDIT_RETENTION_DAYS="90")) == {"audit.retention"}


def test_masking_unavailable_fails(deployment: Deployment) -> None:
    results = deployment.doctor(CORESDK_SIDECAR_ADDR=f"[::1]:{free_port('::1')}")
    assert failing(results) == {"masking.active"}
    assert results["sidecar.loopback"].status is Status.WARN  # nothing listens there


def test_a_broken_route_map_fails(deployment: Deployment, tmp_path: Path) -> None:
    routes = tmp_path / "routes.json"
    routes.write_text(json.dumps({"routes": [{"method": "GET", "path": "/v1/x", "permission": "x:export"}], **PLANS}))
    assert failing(deployment.doctor(CORESDK_ROUTES_FILE=str(routes))) == {"gateway.routes"}


def test_a_route_map_without_plans_fails(deployment: Deployment, tmp_path: Path) -> None:
    """Without plans the gateway gives every tenant an unlimited plan: the doctor makes that explicit."""
    implicit = tmp_path / "implicit.json"
    example = json.loads((ROOT / "config" / "routes.json").read_text())
    implicit.write_text(json.dumps({k: v for k, v in example.items() if k not in ("plans", "tenants", "default_plan")}))
    results = deployment.doctor(CORESDK_ROUTES_FILE=str(implicit))
    assert failing(results) == {"gateway.entitlements"}
    assert "unlimited" in results["gateway.entitlements"].detail
    nobody = tmp_path / "nobody.json"
    nobody.write_text(json.dumps({**json.loads(implicit.read_text()), "plans": PLANS["plans"]}))
    results = deployment.doctor(CORESDK_ROUTES_FILE=str(nobody))
    assert failing(results) == set()
    assert results["gateway.entitlements"].status is Status.WARN
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**json.loads(implicit.read_text()), "plans": {"p": {"requests_per_minute": 0}}}))
    assert failing(deployment.doctor(CORESDK_ROUTES_FILE=str(bad))) == {"gateway.entitlements"}


def test_an_application_reachable_without_the_gateway_fails(deployment: Deployment) -> None:
    results = deployment.doctor(CORESDK_GATEWAY_URL=f"http://127.0.0.1:{deployment.upstream.port}")
    # the application answers everything: anonymous requests, ambiguous paths, the control plane's internal paths
    assert failing(results) == {"gateway.authenticates", "gateway.paths", "gateway.internal"}
    assert "answered 200" in results["gateway.authenticates"].detail
    assert "/.well-known/../api/v1/keys" in results["gateway.paths"].detail


# --- the seams: gateway paths, internal routes, trusted proxies, sign-in origins ------------------------------------


def test_a_control_plane_reachable_as_the_public_face_fails(deployment: Deployment) -> None:
    results = deployment.doctor(CORESDK_GATEWAY_URL=deployment.cp.url)
    assert "gateway.internal" in failing(results)
    assert "/v1/oauth/apps" in results["gateway.internal"].detail


@pytest.mark.parametrize("value", ["0.0.0.0/0", "::/0", "10.0.0.0/4", "not-a-cidr"])
def test_trusting_every_address_fails(deployment: Deployment, value: str) -> None:
    assert failing(deployment.doctor(CORESDK_TRUSTED_PROXIES=value)) == {"proxies.trusted"}


def test_no_trusted_proxy_behind_a_gateway_warns(deployment: Deployment) -> None:
    result = deployment.doctor(CORESDK_TRUSTED_PROXIES=None)["proxies.trusted"]
    assert result.status is Status.WARN and "CORESDK_TRUSTED_PROXIES" in result.remediation


def test_plain_http_public_origin_fails(deployment: Deployment) -> None:
    results = deployment.doctor(CORESDK_PUBLIC_ORIGINS="http://login.example")
    assert failing(results) == {"oauth.origins"}
