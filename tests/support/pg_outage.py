"""Take a private PostgreSQL cluster (tests/support/postgres.py) down and bring it back, its data kept."""

from __future__ import annotations

from tests.support.postgres import PostgresCluster, _bin


def take_down(cluster: PostgresCluster) -> None:
    """Fast shutdown: every session is terminated, nothing listens on the port until bring_up."""
    assert cluster._dir is not None, "only a private cluster can be taken down"
    cluster._run([_bin("pg_ctl"), "-D", str(cluster._dir / "data"), "-m", "fast", "-w", "stop"])


def bring_up(cluster: PostgresCluster) -> None:
    assert cluster._dir is not None, "only a private cluster can be brought up"
    opts = f"-p {cluster.port} -k {cluster._dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    cluster._run(
        [
            _bin("pg_ctl"),
            "-D",
            str(cluster._dir / "data"),
            "-o",
            opts,
            "-l",
            str(cluster._dir / "log"),
            "-w",
            "-t",
            "60",
            "start",
        ]
    )
