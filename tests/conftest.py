"""Fixtures shared by the whole suite.

PostgreSQL: a fresh database is created for the test session and dropped at its
end. Without a server the PostgreSQL tests skip and say why, unless
``TROC_REQUIRE_POSTGRES=1`` (set by CI), in which case they fail.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from concurrent.futures import ThreadPoolExecutor

import asyncpg
import pytest

from storage.db import Database, migrate, open_database, sqlite_url
from storage.schema import metadata

POSTGRES_ADMIN_URL = os.environ.get(
    "TROC_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_POSTGRES = os.environ.get("TROC_REQUIRE_POSTGRES") == "1"


def run_in_own_loop(coroutine_function, *args):
    """Run a coroutine to completion on a loop of its own, from sync or async code."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine_function(*args)).result()


async def _admin_execute(statement: str) -> None:
    # The driver itself: CREATE DATABASE cannot run inside a transaction.
    url = POSTGRES_ADMIN_URL.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(url, timeout=5)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def postgres_url():
    """A fresh, migrated PostgreSQL database for this test session."""
    name = f"troc_test_{uuid.uuid4().hex[:12]}"
    try:
        run_in_own_loop(_admin_execute, f'CREATE DATABASE "{name}"')
    except Exception as exc:  # noqa: BLE001 - whatever keeps us from the server
        message = f"PostgreSQL is not reachable at {POSTGRES_ADMIN_URL}: {exc}"
        if REQUIRE_POSTGRES:
            pytest.fail(message)
        pytest.skip(message)
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"

    async def _migrate():
        db = open_database(url)
        try:
            await migrate(db)
        finally:
            await db.close()

    run_in_own_loop(_migrate)
    yield url
    run_in_own_loop(_admin_execute, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _empty_all_tables(db: Database) -> None:
    async with db.engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            await conn.execute(table.delete())


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request, tmp_path):
    """A migrated, empty database on each backend."""
    if request.param == "sqlite":
        database = open_database(sqlite_url(tmp_path / "troc.db"))
        await migrate(database)
    else:
        database = open_database(request.getfixturevalue("postgres_url"))
        await _empty_all_tables(database)
    yield database
    await database.close()
