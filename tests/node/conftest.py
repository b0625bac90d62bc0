"""A node application on a fresh database of each backend, for API tests."""

from __future__ import annotations

import pytest

from node.app import create_app
from node.settings import Settings
from protocol.identity import NodeKey
from storage.db import Database, migrate, open_database, sqlite_url
from storage.nodes import claim_database
from tests.conftest import _admin_execute, _empty_all_tables, run_in_own_loop
from tests.factories import NOW

NODE_KEY = NodeKey.from_seed(b"\x07" * 32)


@pytest.fixture
def settings(tmp_path) -> Settings:
    # No limits of new accounts here: tests/node/web/test_newcomers.py turns them on.
    return Settings(data_dir=tmp_path, name="Centre social de Montanou",
                    public_url="http://127.0.0.1:8080", new_member_days=0)  # fmt: skip


@pytest.fixture
async def client(aiohttp_client, db, settings):
    await db.write(claim_database, NODE_KEY.node_id, settings.name, NOW)
    app = create_app(settings, key=NODE_KEY, db=db, clock=lambda: NOW)
    return await aiohttp_client(app)


# --- Several nodes in one test (federation) ----------------------------------

SPARE_POSTGRES_DATABASES = 3


@pytest.fixture(scope="session")
def postgres_spare_urls(postgres_url):
    """Migrated PostgreSQL databases for the extra nodes of federation tests."""
    base, name = postgres_url.rsplit("/", 1)
    urls = [f"{base}/{name}_spare{i}" for i in range(SPARE_POSTGRES_DATABASES)]

    async def _migrate(url):
        database = open_database(url)
        try:
            await migrate(database)
        finally:
            await database.close()

    for url in urls:
        run_in_own_loop(_admin_execute, f'CREATE DATABASE "{url.rsplit("/", 1)[1]}"')
        run_in_own_loop(_migrate, url)
    yield urls
    for url in urls:
        run_in_own_loop(
            _admin_execute, f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'
        )


@pytest.fixture
async def spare_db(request, db, tmp_path):
    """A factory of more empty databases, on the same backend as ``db``."""
    urls = [] if db.is_sqlite else request.getfixturevalue("postgres_spare_urls")
    opened: list[Database] = []

    async def make() -> Database:
        index = len(opened)
        if db.is_sqlite:
            database = open_database(sqlite_url(tmp_path / f"spare{index}.db"))
            await migrate(database)
        else:
            database = open_database(urls[index])
            await _empty_all_tables(database)
        opened.append(database)
        return database

    yield make
    for database in opened:
        await database.close()
