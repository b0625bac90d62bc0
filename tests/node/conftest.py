"""A node application on a fresh database of each backend, for API tests."""

from __future__ import annotations

import pytest

from node.app import create_app
from node.settings import Settings
from protocol.identity import NodeKey
from storage.nodes import claim_database
from tests.factories import NOW

NODE_KEY = NodeKey.from_seed(b"\x07" * 32)


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(data_dir=tmp_path, name="Centre social de Montanou",
                    public_url="http://127.0.0.1:8080")  # fmt: skip


@pytest.fixture
async def client(aiohttp_client, db, settings):
    await claim_database(db, NODE_KEY.node_id, settings.name, NOW)
    app = create_app(settings, key=NODE_KEY, db=db, clock=lambda: NOW)
    return await aiohttp_client(app)
