"""Several real nodes in one test process, talking over loopback HTTP.

Each node is the real application (``create_app``) on a real aiohttp server
on its own port, with its own database; they call each other through their
real peer clients. Nothing of ours is mocked. ``Clock`` is the one thing
tests control: the nodes of a test share it, so signatures and annonces agree
on the time.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from yarl import URL

from node import annonces
from node.admin import create_admin_app
from node.annonces import Author, Draft
from node.app import create_app
from node.courier import deliver_due, deliver_round
from node.gossip import Delivery
from node.keys import db_key
from node.peer_client import PeerTimeouts
from node.settings import Secret, Settings
from protocol.annonce import Category, Kind
from protocol.envelope import SignedAnnonce
from protocol.federation import CONTENT_TYPE
from protocol.httpsig import sign_request
from protocol.identity import NodeKey
from storage import annonces as annonce_store
from storage import outbox as outbox_store
from storage import peers as peer_store
from storage.db import Database
from storage.nodes import claim_database
from storage.outbox import ANNONCE, MESSAGE
from tests.factories import NOW
from tests.ports import free_port


@dataclass
class Clock:
    now: float = NOW

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Node:
    name: str
    key: NodeKey
    db: Database
    port: int
    clock: Clock
    data_dir: Path
    app: web.Application | None = None
    server: TestServer | None = None
    options: dict = field(default_factory=dict)
    recovery: NodeKey | None = None  # the node's recovery key, named by its document

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def node_id(self) -> bytes:
        return self.key.node_id

    @property
    def settings(self) -> Settings:
        # No limits of new accounts unless a test asks (tests/node/web/test_newcomers.py).
        options = {"new_member_days": 0, **self.options}
        return Settings(data_dir=self.data_dir, name=self.name, public_url=self.url,
                        listen=f"127.0.0.1:{self.port}", **options)  # fmt: skip

    async def start(
        self, *, background_tasks: bool = True, peer_timeouts: PeerTimeouts | None = None
    ) -> Node:
        """Serve a fresh application on this node's port and database."""
        await self.db.write(claim_database, self.key.node_id, self.name, NOW)
        self.app = create_app(
            self.settings, key=self.key, db=self.db, clock=self.clock,
            peer_timeouts=peer_timeouts, background_tasks=background_tasks,
            recovery=self.recovery.node_id_text if self.recovery else None,
        )  # fmt: skip
        self.server = TestServer(self.app, host="127.0.0.1", port=self.port)
        await self.server.start_server()
        return self

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.close()
        self.server = None

    async def post(self, title: str = "Aide au jardin", **changes) -> SignedAnnonce:
        draft = Draft(kind=Kind.OFFER, category=Category.SERVICE, title=title,
                      text="Je peux tailler votre haie.", commune="47001", **changes)  # fmt: skip
        return await annonces.publish(self.app, Author("marie", "Marie Dupont"), draft)

    async def current_ids(self) -> set[bytes]:
        return {item_id for _, item_id in await self.db.read(annonce_store.reconcile_items)}

    async def holds(self, annonce_id: bytes) -> bool:
        return bool(await self.db.read(annonce_store.known_ids, [annonce_id]))


async def make_nodes(
    db: Database, spare_db, tmp_path: Path, names: list[str], clock: Clock
) -> list[Node]:
    """Nodes with keys derived from their position: the first on ``db``, the others on spares."""
    nodes = []
    for index, name in enumerate(names):
        key = NodeKey.from_seed(bytes([0x40 + index]) * 32)
        data_dir = tmp_path / f"node{index}"
        data_dir.mkdir()
        database = db if index == 0 else await spare_db()
        nodes.append(Node(name, key, database, free_port(), clock, data_dir))
    return nodes


async def peer(a: Node, b: Node) -> None:
    """Make ``a`` and ``b`` accept each other."""
    await a.db.write(peer_store.add_peer, b.node_id, b.url, b.name, NOW)
    await b.db.write(peer_store.add_peer, a.node_id, a.url, a.name, NOW)


async def eventually(check, *, timeout: float = 10.0, interval: float = 0.05):
    """Await ``check()`` until it returns something true; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout} s: {check.__qualname__}")
        await asyncio.sleep(interval)


async def deliver_outbox_batch(app: web.Application, peer_id: bytes) -> Delivery:
    """One courier round to the peer; what its annonces did (nothing to send: all zero)."""
    done = (await deliver_round(app, peer_id)).of(ANNONCE)
    return done.detail if done is not None else Delivery()


@dataclass(frozen=True)
class Sent:
    """What a courier pass did with private messages (or reports), summed over destinations."""

    delivered: int = 0
    refused: int = 0
    failed: int = 0


async def deliver_due_of(app: web.Application, kind: str = MESSAGE) -> Sent:
    """One courier round to each destination whose back-off ran out; what items of ``kind`` did."""
    delivered = refused = failed = 0
    for done in (await deliver_due(app)).values():
        outcome = done.of(kind)
        if outcome is not None:
            delivered += len(outcome.delivered)
            refused += len(outcome.refused)
            failed += len(outcome.failed)
    return Sent(delivered, refused, failed)


async def silent_peer(port: int) -> TestServer:
    """A misbehaving peer on ``port``: it takes every request and never answers."""
    stalled = web.Application()

    async def never(request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(3600)
        raise AssertionError("never answers")

    stalled.router.add_route("*", "/{tail:.*}", never)
    server = TestServer(stalled, host="127.0.0.1", port=port)
    await server.start_server()
    return server


async def outboxes_empty(*nodes: Node) -> bool:
    """Whether no node has anything left to deliver to its peers."""
    for node in nodes:
        if await node.db.read(outbox_store.pending_counts):
            return False
    return True


def db_of(app: web.Application) -> Database:
    return app[db_key]


def signed_headers(
    key: NodeKey,
    method: str,
    url: str,
    body: bytes = b"",
    *,
    created: int = NOW,
    content_type: str | None = CONTENT_TYPE,
) -> dict[str, str]:
    """The headers of a request ``key`` signs, as a peer (or an impostor) would."""
    headers = {"Content-Type": content_type} if (body and content_type) else {}
    headers.update(sign_request(key, method, url, headers, body, created=created))
    return headers


@dataclass
class Answer:
    status: int
    content_type: str
    body: bytes

    def json(self):
        return json.loads(self.body)


async def send(method: str, url: str, body: bytes = b"", headers: dict | None = None) -> Answer:
    """One raw HTTP request, sent exactly as given."""
    async with aiohttp.ClientSession(skip_auto_headers=("Content-Type",)) as session:
        async with session.request(
            method, URL(url, encoded=True), data=body or None, headers=headers or {}
        ) as response:
            return Answer(response.status, response.content_type, await response.read())


async def signed_call(key: NodeKey, node: Node, path: str, body: bytes = b"", **options) -> Answer:
    method = "POST" if body else "GET"
    url = node.url + path
    return await send(method, url, body, signed_headers(key, method, url, body, **options))


# --- A node's admin socket --------------------------------------------------------

ADMIN_TOKEN = "jeton-de-test-0123456789"


class Admin:
    """A client of one node's admin socket."""

    def __init__(self, path: Path, token: str | None = ADMIN_TOKEN) -> None:
        self.path, self.token = path, token

    async def call(self, method: str, path: str, body=None) -> tuple[int, object]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        connector = aiohttp.UnixConnector(path=str(self.path))
        async with aiohttp.ClientSession(connector=connector) as session:
            async with session.request(method, "http://troc" + path, json=body,
                                       headers=headers) as response:  # fmt: skip
                raw = await response.read()
                return response.status, (await response.json(content_type=None)) if raw else None


@asynccontextmanager
async def served_admin(node: Node) -> AsyncIterator[Admin]:
    """The node's admin API on a Unix socket (in a short /tmp path), and its client."""
    short = Path(tempfile.mkdtemp(prefix="troc-adm-", dir="/tmp"))
    runner = web.AppRunner(create_admin_app(node.app, token=Secret(ADMIN_TOKEN)))
    await runner.setup()
    try:
        await web.UnixSite(runner, str(short / "admin.sock")).start()
        yield Admin(short / "admin.sock")
    finally:
        await runner.cleanup()
        shutil.rmtree(short, ignore_errors=True)
