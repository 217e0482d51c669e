"""Store work done in batches (issue 17): what concurrent requests ask at one moment goes to the database together.

Client lookups: every caller gets its own client (with that client's secrets), or None, whatever else shares its
batch, on both stores. Shared rate limits: on PostgreSQL the takes waiting on a replica go to the database
in one statement. The budget must be exactly that of the same takes one after another: per bucket, as many pass as
there were whole tokens, the first ones in arrival order, every other one told when to come back. Generated mixes of
buckets, bursts and numbers of concurrent takes, against a real PostgreSQL, with a rate so small that no token
refills during a case."""

from __future__ import annotations

import asyncio
import secrets
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controlplane.secrets import new_id
from controlplane.store.db import PostgresDatabase, open_database
from controlplane.store.migrations import migrate
from controlplane.store.models import ClientSecret
from controlplane.store.rate_limits import PostgresRateBuckets
from controlplane.store.store import Store
from tests.support.postgres import PostgresCluster
from tests.unit.oauth_harness import make_app, open_services

SLOW = 1e-6  # tokens per second: nothing refills while a case runs

CASES = st.lists(st.tuples(st.integers(1, 4), st.integers(0, 9)), min_size=1, max_size=5)  # (burst, takes)


async def _decide(url: str, cases: list[tuple[int, int]], rounds: int) -> list[list[list[int | None]]]:
    db = await open_database(url)
    assert isinstance(db, PostgresDatabase)
    await migrate(db)
    buckets = PostgresRateBuckets(db, longest_refill_seconds=60)
    names = [f"case:{secrets.token_hex(6)}" for _ in cases]
    out = []
    for _ in range(rounds):  # a second round sees the buckets as the first left them
        takes = [(name, burst) for name, (burst, n) in zip(names, cases, strict=True) for _ in range(n)]
        answers = await asyncio.gather(*(buckets.take(name, SLOW, burst) for name, burst in takes))
        per_case: list[list[int | None]] = [[] for _ in cases]
        for (name, _), answer in zip(takes, answers, strict=True):
            per_case[names.index(name)].append(answer)
        out.append(per_case)
    await db.close()
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cases=CASES)
def test_a_batch_spends_exactly_the_tokens_single_takes_would(
    postgres: PostgresCluster, cases: list[tuple[int, int]]
) -> None:
    first, second = asyncio.run(_decide(postgres.new_database(), cases, rounds=2))
    for (burst, n), answers, again in zip(cases, first, second, strict=True):
        passed = min(n, burst)
        assert answers[:passed] == [None] * passed  # the first in arrival order pass
        assert all(isinstance(a, int) and a >= 1 for a in answers[passed:])  # the others get a Retry-After
        left = burst - passed
        assert again[: min(n, left)] == [None] * min(n, left)  # nothing was spent twice, nothing given twice
        assert all(isinstance(a, int) and a >= 1 for a in again[min(n, left) :])


LOOKUPS = st.lists(st.sampled_from(["a", "b", "c", "missing", "also-missing"]), min_size=1, max_size=12)


async def _lookups(url: str, tmp: Path, batches: list[list[str]]) -> None:
    services = await open_services(url, tmp)
    store: Store = services.store
    apps = {name: await make_app(services) for name in ("a", "b", "c")}
    secrets_of = {}
    now = time.time()
    for name, app in apps.items():
        secret = ClientSecret(new_id("sec"), app.id, f"hash-of-{name}", now, None)
        async with store.transaction() as tx:
            await tx.apps.insert_secret(secret)
        secrets_of[name] = [secret]
    for batch in batches:
        answers = await asyncio.gather(
            *(store.clients.client_with_secrets(apps[n].client_id if n in apps else n) for n in batch)
        )
        for name, answer in zip(batch, answers, strict=True):
            if name in apps:
                assert answer == (apps[name], secrets_of[name])
            else:
                assert answer is None
    await store.db.close()


@pytest.mark.parametrize("store_backend", ["sqlite", "postgres"])
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(LOOKUPS, min_size=1, max_size=3))
def test_batched_client_lookups_answer_each_caller_with_its_own_client(
    postgres: PostgresCluster, tmp_path_factory: pytest.TempPathFactory, store_backend: str, batches: list[list[str]]
) -> None:
    tmp = tmp_path_factory.mktemp("lookups")
    url = f"sqlite:///{tmp / 'cp.db'}" if store_backend == "sqlite" else postgres.new_database()
    asyncio.run(_lookups(url, tmp, batches))


async def _insert_many(url: str, sizes: tuple[int, int, int]) -> list[list[tuple[str, int]]]:
    from controlplane.store.db import insert_many

    db = await open_database(url)
    suffix = secrets.token_hex(4)
    tables = [f"t{i}_{suffix}" for i in range(3)]
    async with db.transaction() as tx:
        for table in tables:
            await tx.execute(f"CREATE TABLE {table} (name TEXT NOT NULL, n INTEGER NOT NULL)")
    async with db.transaction() as tx:
        await insert_many(
            tx,
            [
                (f"INSERT INTO {table} (name, n)", [(f"{table}-{j}", j) for j in range(size)])
                for table, size in zip(tables, sizes, strict=True)
            ],
        )
    got = [[(r["name"], r["n"]) for r in await db.read(f"SELECT name, n FROM {table} ORDER BY n")] for table in tables]
    await db.close()
    return got


@pytest.mark.parametrize("store_backend", ["sqlite", "postgres"])
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sizes=st.tuples(*(st.sampled_from([0, 1, 3, 20, 16000]) for _ in range(3))))
def test_insert_many_writes_every_row_of_every_table_once(
    postgres: PostgresCluster,
    tmp_path_factory: pytest.TempPathFactory,
    store_backend: str,
    sizes: tuple[int, int, int],
) -> None:
    """One statement on PostgreSQL (data-modifying WITH), one per table on SQLite or past the parameter limit
    (16000 rows of two values): either way each table holds exactly its own rows."""
    tmp = tmp_path_factory.mktemp("many")
    url = f"sqlite:///{tmp / 'cp.db'}" if store_backend == "sqlite" else postgres.new_database()
    got = asyncio.run(_insert_many(url, sizes))
    for i, size in enumerate(sizes):
        assert [n for _, n in got[i]] == list(range(size))
        assert all(name.startswith(f"t{i}_") for name, _ in got[i])


@pytest.mark.parametrize("name", ["audit:cp'); DROP TABLE x; --", "a b", "", "x;y", "é"])
def test_an_advisory_lock_name_that_is_not_a_plain_word_is_refused(name: str) -> None:
    from controlplane.store.db import _begin_locked

    with pytest.raises(ValueError, match="not a plain word"):
        _begin_locked((name,))
