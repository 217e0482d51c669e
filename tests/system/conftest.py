"""The whole system as an operator deploys it, started once for this directory's tests, attacked only from outside.

gateway (public, the issuer's origin) → control plane (internal, trusting the gateway's Forwarded header) and the
application; a sidecar trusting the control plane's keys; OpenBao behind the sidecar. Tests speak to the gateway (and,
where a finding is about the control plane itself, to the control plane's own port) as a client would.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.controlplane import ADMIN_TOKEN, ControlPlaneProcess
from tests.support.gateway import GatewayProcess, Upstream
from tests.support.nginx import NginxProcess
from tests.support.openbao import OpenBao
from tests.support.ports import free_port
from tests.support.processes import SidecarProcess

ROUTES = Path(__file__).resolve().parents[2] / "config" / "routes.json"


@dataclass
class System:
    cp: ControlPlaneProcess
    sidecar: SidecarProcess
    upstream: Upstream
    gateway: GatewayProcess
    bao: OpenBao
    tasks_reader: str  # an access token holding only tasks:read (tenant-a)
    orders_app: dict[str, Any]

    @property
    def admin_token(self) -> str:
        return ADMIN_TOKEN


@pytest.fixture(scope="session")
def system(tmp_path_factory: pytest.TempPathFactory, bao: OpenBao) -> Iterator[System]:
    gateway_port = free_port()
    public = f"http://127.0.0.1:{gateway_port}"
    directory = tmp_path_factory.mktemp("system")
    cp = ControlPlaneProcess(
        directory,
        f"sqlite:///{directory / 'controlplane.db'}",
        CORESDK_ISSUER=public,
        CORESDK_TRUSTED_PROXIES="127.0.0.1/32",
        CORESDK_RATE_LOGIN_PER_MIN="10",
        CORESDK_RATE_LOGIN_USER_PER_MIN="15",
    )
    # the control plane's own address is a public origin too, so the browser test can sign in on it directly
    cp.env["CORESDK_PUBLIC_ORIGINS"] = cp.url
    cp.restart()
    # one sidecar ships the application's, the gateway's and the nginx decision endpoint's chains: enrolled for all
    credential = cp.enrol_sidecar(prefixes=["system-"], name="system-sidecar")
    sidecar = SidecarProcess(
        cp.sidecar_env(
            **bao.approle_env(),
            CORESDK_AUDIT_CHAIN="system-app",
            CORESDK_SECRET_PATHS="app/",
            CORESDK_CP_TOKEN=credential,
        )
    )
    upstream = Upstream()
    gateway = GatewayProcess(
        upstream,
        sidecar,
        cp_url=cp.url,
        port=gateway_port,
        routes_file=ROUTES,
        env={"CORESDK_GATEWAY_AUDIT_CHAIN": "system-gateway"},
    )
    reader = cp.create_app(
        name="tasks reader", scopes=["tasks:read"], tenant_id="tenant-a", grant_types=["client_credentials"]
    )
    orders = cp.create_app(
        name="orders",
        scopes=["orders:read", "orders:write"],
        tenant_id="tenant-a",
        grant_types=["authorization_code", "refresh_token", "client_credentials"],
        redirect_uris=[f"http://127.0.0.1:{upstream.port}/callback"],
    )
    try:
        yield System(cp, sidecar, upstream, gateway, bao, cp.client_token(reader, "tasks:read"), orders)
    finally:
        gateway.stop()
        sidecar.stop()
        cp.stop()


@dataclass(frozen=True)
class Front:
    """The public face under attack: the CoreSDK gateway itself, or nginx asking the gateway's decision endpoint."""

    name: str
    port: int
    url: str


@pytest.fixture(scope="session")
def nginx_front(system: System) -> Iterator[NginxProcess]:
    authz = GatewayProcess(
        system.upstream,
        system.sidecar,
        cp_url=system.cp.url,
        routes_file=ROUTES,
        env={
            "CORESDK_GATEWAY_MODE": "authz",
            "CORESDK_GATEWAY_AUDIT_CHAIN": "system-nginx",
            "CORESDK_TRUSTED_PROXIES": "127.0.0.1/32",
        },
    )
    nginx = NginxProcess(authz.port, system.upstream.port, system.cp.port)
    try:
        yield nginx
    finally:
        nginx.stop()
        authz.stop()


@pytest.fixture(params=["gateway", "nginx"])
def front(request: pytest.FixtureRequest, system: System) -> Front:
    if request.param == "gateway":
        return Front("gateway", system.gateway.port, system.gateway.url)
    nginx: NginxProcess = request.getfixturevalue("nginx_front")
    return Front("nginx", nginx.port, nginx.url)
