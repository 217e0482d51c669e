"""A production control plane does not run on SQLite by default (issue 11, #11): it refuses to start, naming
DATABASE_URL, unless one single node is asked for by name; development keeps its embedded SQLite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from coresdk.config.controlplane import load_controlplane_config
from coresdk.errors import ConfigError
from tests.support.controlplane import ControlPlaneProcess
from tests.support.processes import ROOT


def start_expecting_exit(cp_env: dict[str, str], **changes: str | None) -> tuple[int, str]:
    env = {**cp_env, **{k: v for k, v in changes.items() if v is not None}}
    for name in [k for k, v in changes.items() if v is None]:
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-m", "controlplane"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    return done.returncode, done.stdout + done.stderr


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> ControlPlaneProcess:
    """A real production control plane on SQLite, stated single-node (the test support does so for SQLite)."""
    directory = tmp_path_factory.mktemp("cp-db")
    proc = ControlPlaneProcess(directory, f"sqlite:///{directory / 'cp.db'}")
    assert proc.env["CORESDK_CP_SQLITE_SINGLE_NODE"] == "true"
    assert proc.stop() == 0, proc.output()
    return proc


@pytest.mark.parametrize(
    "database",
    [None, "sqlite:///{dir}/other.db"],
    ids=["DATABASE_URL unset (the SQLite default)", "DATABASE_URL=sqlite:///..."],
)
def test_production_refuses_sqlite_and_names_database_url(
    production: ControlPlaneProcess, database: str | None
) -> None:
    url = database.format(dir=production.data_dir) if database else None
    code, output = start_expecting_exit(production.env, DATABASE_URL=url, CORESDK_CP_SQLITE_SINGLE_NODE=None)
    assert code == 2, output
    assert "DATABASE_URL" in output and "PostgreSQL" in output
    assert "CORESDK_CP_SQLITE_SINGLE_NODE" in output
    assert "Traceback" not in output
    assert not Path(production.data_dir / "other.db").exists()


def test_single_node_must_be_a_boolean(production: ControlPlaneProcess) -> None:
    code, output = start_expecting_exit(production.env, CORESDK_CP_SQLITE_SINGLE_NODE="maybe")
    assert code == 2 and "CORESDK_CP_SQLITE_SINGLE_NODE" in output, output


def test_stated_single_node_and_development_run_on_sqlite(production: ControlPlaneProcess) -> None:
    production.start()  # the module's control plane, started as before: SQLite with the single-node statement
    try:
        assert production.admin("GET", "/v1/users").status_code == 200
    finally:
        assert production.stop() == 0
    dev = load_controlplane_config({"CORESDK_ENV": "development", "CORESDK_DATA_DIR": str(production.data_dir / "d")})
    assert dev.database_url.startswith("sqlite:///")


def test_postgresql_needs_no_statement(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    key.write_text("checked when the control plane starts, not when its settings are read")
    env = {
        "CORESDK_ISSUER": "https://id.example",
        "CPOD_ADMIN_TOKEN": "a" * 40,
        "CORESDK_SIDECAR_TOKEN": "s" * 40,
        "CORESDK_SERVER_SECRET": "x" * 40,
        "CORESDK_SIGNING_KEY_PATH": str(key),
        "DATABASE_URL": "postgresql://cp@db.internal:5432/cp",
    }
    assert load_controlplane_config(env).database_url == env["DATABASE_URL"]
    with pytest.raises(ConfigError) as err:
        load_controlplane_config({**env, "DATABASE_URL": "sqlite:///cp.db"})
    assert err.value.variable == "DATABASE_URL"
