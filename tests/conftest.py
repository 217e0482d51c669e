from __future__ import annotations

import json
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio

from coresdk.v1 import auth_pb2_grpc
from tests.support.jwks_server import JwksServer
from tests.support.processes import SidecarProcess
from tests.support.tokens import AUDIENCE, ISSUER, SigningKey


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "variants(*names): run only for these params of the `apps` fixture")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `variants(...)` are collected only for those variants: deselected, never skipped."""
    keep, drop = [], []
    for item in items:
        marker = item.get_closest_marker("variants")
        callspec = getattr(item, "callspec", None)
        variant = callspec.params.get("apps") if callspec is not None else None
        (drop if marker is not None and variant is not None and variant not in marker.args else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def _shared_dir() -> Path:
    """../shared beside the checkout; for a local clone of a checkout (`git clone . /tmp/x`), the one beside the
    checkout it was cloned from, so a clean clone tests against the same data. CORESDK_SHARED_DIR wins."""
    if os.environ.get("CORESDK_SHARED_DIR"):
        return Path(os.environ["CORESDK_SHARED_DIR"])
    root = Path(__file__).resolve().parents[1]
    beside = root.parent / "shared"
    if beside.exists():
        return beside
    import subprocess

    origin = subprocess.run(
        ["git", "-C", str(root), "config", "--get", "remote.origin.url"], capture_output=True, text=True, check=False
    ).stdout.strip()
    if origin and Path(origin).is_dir():
        return Path(origin).resolve().parent / "shared"
    return beside


SHARED = _shared_dir()
SECOND_ISSUER = "https://second-issuer.test"
SECOND_AUDIENCE = "api://billing"


def shared_testdata(*parts: str) -> Path:
    """Path into ../shared/testdata; skipped with a reason where absent, but never in CI."""
    path = SHARED.joinpath("testdata", *parts)
    if not path.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"test data {path} is missing in CI")
        pytest.skip(f"test data {path} not present in this checkout")
    return path


@pytest.fixture(scope="session")
def keys() -> dict[str, SigningKey]:
    return {
        "rs": SigningKey.rsa("rs-1", "RS256"),
        "ps": SigningKey.rsa("ps-1", "PS256"),
        "ec": SigningKey.ec("ec-1"),
        "second": SigningKey.rsa("second-1", "RS256"),
    }


@pytest.fixture(scope="session")
def jwks(keys: dict[str, SigningKey]) -> Iterator[JwksServer]:
    server = JwksServer()
    server.keys = [keys["rs"].jwk(), keys["ps"].jwk(), keys["ec"].jwk()]
    yield server
    server.close()


@pytest.fixture(scope="session")
def second_jwks(keys: dict[str, SigningKey]) -> Iterator[JwksServer]:
    server = JwksServer()
    server.keys = [keys["second"].jwk()]
    yield server
    server.close()


@pytest.fixture(scope="session")
def sidecar(
    jwks: JwksServer, second_jwks: JwksServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SidecarProcess]:
    issuers_file = tmp_path_factory.mktemp("cfg") / "issuers.json"
    issuers_file.write_text(
        json.dumps(
            {"issuers": [{"issuer": SECOND_ISSUER, "jwks_uri": second_jwks.url, "audiences": [SECOND_AUDIENCE]}]}
        )
    )
    proc = SidecarProcess(
        {
            "CORESDK_JWKS_URI": jwks.url,
            "CORESDK_EXPECTED_ISSUER": ISSUER,
            "CORESDK_EXPECTED_AUDIENCE": f"{AUDIENCE},api://orders-admin",
            "CORESDK_ISSUERS_FILE": str(issuers_file),
        }
    )
    yield proc
    assert proc.stop() == 0, proc.output()


@pytest_asyncio.fixture(scope="session")
async def channel(sidecar: SidecarProcess) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(sidecar.target) as ch:
        yield ch


@pytest.fixture(scope="session")
def auth_stub(channel: grpc.aio.Channel) -> auth_pb2_grpc.AuthServiceStub:
    return auth_pb2_grpc.AuthServiceStub(channel)


# --- control plane (both storage backends) -------------------------------------------------------------------------

from tests.support.controlplane import ControlPlaneProcess  # noqa: E402
from tests.support.oauth import PASSWORD as OAUTH_PASSWORD  # noqa: E402
from tests.support.oauth import REDIRECT as OAUTH_REDIRECT  # noqa: E402
from tests.support.postgres import PostgresCluster  # noqa: E402


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    cluster = PostgresCluster()
    yield cluster
    cluster.stop()


def database_url(backend: str, postgres_factory: object, directory: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{directory / 'controlplane.db'}"
    assert isinstance(postgres_factory, PostgresCluster)
    return postgres_factory.new_database()


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def cp(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControlPlaneProcess]:
    directory = tmp_path_factory.mktemp(f"cp-{backend}")
    pg = request.getfixturevalue("postgres") if backend == "postgres" else None
    proc = ControlPlaneProcess(directory, database_url(backend, pg, directory))
    yield proc
    assert proc.stop() == 0, proc.output()


@pytest.fixture(scope="session")
def web_app(cp: ControlPlaneProcess) -> dict[str, Any]:
    return cp.create_app(
        name="web",
        scopes=["orders:read", "orders:write"],
        grant_types=["authorization_code", "refresh_token"],
        redirect_uris=[OAUTH_REDIRECT, "http://127.0.0.1/cb"],
    )


@pytest.fixture(scope="session")
def user(cp: ControlPlaneProcess) -> str:
    subject = f"alice-{secrets.token_hex(3)}"
    cp.create_user(subject, OAUTH_PASSWORD, tenant_id="tenant-a", roles=["editor"])
    return subject


# --- OpenBao (Vault API) -----------------------------------------------------------------------------------------------

from tests.support.openbao import OpenBao  # noqa: E402


@pytest.fixture(scope="session")
def bao() -> Iterator[OpenBao]:
    server = OpenBao()
    yield server
    server.close()
