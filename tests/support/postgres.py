"""A private PostgreSQL cluster for the test session: initdb + pg_ctl on a free loopback port, trust auth.

Uses CORESDK_TEST_DATABASE_URL instead when set (a server the tests may create databases on). As root, the server
runs as the `postgres` user (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

from tests.support.ports import free_port


def _bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not candidates:
        raise RuntimeError(f"PostgreSQL binary {name!r} not found: install the postgresql package")
    return candidates[-1]


class PostgresCluster:
    def __init__(self) -> None:
        self.external = os.environ.get("CORESDK_TEST_DATABASE_URL")
        self._dir: Path | None = None
        if self.external:
            return
        self.port = free_port()
        self._dir = Path(tempfile.mkdtemp(prefix="coresdk-pg-"))
        self._as_root = os.geteuid() == 0
        if self._as_root:
            shutil.chown(self._dir, "postgres", "postgres")
        data = self._dir / "data"
        self._run([_bin("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
        opts = f"-p {self.port} -k {self._dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._run(
            [_bin("pg_ctl"), "-D", str(data), "-o", opts, "-l", str(self._dir / "log"), "-w", "-t", "60", "start"]
        )

    def _run(self, cmd: list[str]) -> None:
        if self._as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, cwd="/")

    def new_database(self) -> str:
        name = f"coresdk_{uuid.uuid4().hex[:12]}"
        if self.external:
            base = self.external.rsplit("/", 1)[0]
            import asyncio

            import asyncpg

            async def create() -> None:
                conn = await asyncpg.connect(self.external)
                await conn.execute(f'CREATE DATABASE "{name}"')
                await conn.close()

            asyncio.run(create())
            return f"{base}/{name}"
        self._run([_bin("createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name])
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def drop_database(self, url: str) -> None:
        """Simulate the store vanishing under a running client: open sessions are terminated too."""
        assert self._dir is not None, "only a private cluster's databases are dropped"
        name = url.rsplit("/", 1)[1]
        self._run([_bin("dropdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "--force", name])

    def restart(self) -> None:
        assert self._dir is not None, "only a private cluster can be restarted"
        # -l again: restart does not remember the log file, and the server must not inherit our pipes
        self._run(
            [_bin("pg_ctl"), "-D", str(self._dir / "data"), "-l", str(self._dir / "log"), "-m", "fast", "-w", "restart"]
        )

    def stop(self) -> None:
        if self._dir is None:
            return
        try:
            self._run([_bin("pg_ctl"), "-D", str(self._dir / "data"), "-m", "immediate", "-w", "stop"])
        finally:
            shutil.rmtree(self._dir, ignore_errors=True)
