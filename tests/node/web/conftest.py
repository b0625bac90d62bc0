"""A node with its web view, a cheap password hasher, and helpers to drive forms."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from argon2 import PasswordHasher

from node.app import create_app
from node.keys import password_hasher_key
from node.web.session import CSRF_COOKIE
from protocol.identity import NodeKey
from storage.nodes import claim_database
from tests.factories import NOW

NODE_KEY = NodeKey.from_seed(b"\x07" * 32)
# argon2id still, with parameters that keep the suite fast.
CHEAP_HASHER = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)
PASSWORD = "un mot de passe solide"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class Clock:
    def __init__(self, now: int = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_web_client(aiohttp_client, db, settings, clock):
    async def make(**overrides):
        await db.write(claim_database, NODE_KEY.node_id, settings.name, NOW)
        app = create_app(replace(settings, **overrides), key=NODE_KEY, db=db, clock=clock)
        app[password_hasher_key] = CHEAP_HASHER
        return await aiohttp_client(app)

    return make


@pytest.fixture
async def web_client(make_web_client):
    return await make_web_client()


async def csrf_token(client, path: str = "/") -> str:
    """Visit a page (which sets the CSRF cookie) and read the form's token."""
    response = await client.get(path)
    match = CSRF.search(await response.text())
    assert match, f"no CSRF token on {path}"
    return match.group(1)


async def post_form(client, path: str, data: dict, *, csrf: str | None = None, page: str | None = None):
    token = csrf if csrf is not None else await csrf_token(client, page or "/connexion")
    return await client.post(path, data={"csrf": token, **data}, allow_redirects=False)


async def sign_up(client, handle: str = "marie", name: str = "Marie D.") -> None:
    response = await post_form(client, "/inscription", {
        "nom": name, "identifiant": handle, "mot_de_passe": PASSWORD,
        "confirmation": PASSWORD, "charte": "oui",
    })  # fmt: skip
    assert response.status == 303, await response.text()


async def log_out(client) -> None:
    response = await post_form(client, "/deconnexion", {})
    assert response.status == 303
    client.session.cookie_jar.clear(lambda c: c.key != CSRF_COOKIE)
