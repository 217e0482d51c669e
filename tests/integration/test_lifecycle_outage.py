"""The control plane's PostgreSQL goes away while it serves and comes back: meanwhile every answer that needs the
store is a prompt 503 with a JSON error (never a hang, never a success that was not stored), the JWKS is still
served from memory, and once the database is back the same process serves again without a restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.controlplane import ControlPlaneProcess
from tests.support.lifecycle import poll
from tests.support.pg_outage import bring_up, take_down
from tests.support.postgres import PostgresCluster

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
