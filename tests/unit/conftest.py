"""In-process control plane services for the OAuth rule tests, on both storage backends."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.conftest import database_url
from tests.unit.oauth_harness import Services, open_services


@pytest_asyncio.fixture(scope="module")
async def svc(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Services]:
    """One store per test module and backend (SQLite file or a fresh PostgreSQL database); tests use fresh apps."""
    directory = tmp_path_factory.mktemp(f"oauth-{backend}")
    pg = request.getfixturevalue("postgres") if backend == "postgres" else None
    services = await open_services(database_url(backend, pg, directory), directory)
    yield services
    await services.store.db.close()
