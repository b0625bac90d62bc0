"""Blocks across two real nodes, and block notices sent by hostile or mistaken nodes.

Two real node applications (tests/node/harness.py), each with its own
database (both backends) and loopback HTTP server; residents use the real
web forms and the nodes call each other through their real peer clients.
Background tasks are off: each delivery is a courier round the test takes.
"""

from __future__ import annotations

import html
import re

import msgpack
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from node.blocks import BLOCK
from protocol import limits
from protocol.blocks import BLOCK_PATH, BlockNotice, encode_block
from protocol.federation import CONTENT_TYPE
from protocol.identity import NodeKey
from storage import blocks as block_store
from storage import outbox, residents
from storage import peers as peer_store
from storage.blocks import Who
from storage.schema import member_blocks
from tests.factories import NOW
from tests.node.harness import (
    Clock,
    Sent,
    deliver_due_of,
    deliver_outbox_batch,
    make_nodes,
    peer,
    send,
    signed_call,
    signed_headers,
)
from tests.node.test_federation_hostile import assert_problem
from tests.node.web.conftest import PASSWORD, csrf_token, post_form, sign_up
from tests.node.web.test_annonces import publish

PEER = NodeKey.from_seed(b"\x51" * 32)
STRANGER = NodeKey.from_seed(b"\x52" * 32)
OTHER = NodeKey.from_seed(b"\x53" * 32)
CONVERSATION = re.compile(r"^/messages/(\d+)$")


@pytest.fixture
async def pair(db, spare_db, tmp_path):
    names = ["Maison du Pin", "Centre de Montanou"]
    a, b = await make_nodes(db, spare_db, tmp_path, names, Clock())
    await peer(a, b)
    for node in (a, b):
        await node.start(background_tasks=False)
    yield a, b
    for node in (a, b):
        await node.stop()


@pytest.fixture
async def resident():
    sessions: list[TestClient] = []

    async def sign_up_on(node, login: str, name: str) -> TestClient:
        client = TestClient(node.server)
        await client.start_server()
        sessions.append(client)
        await sign_up(client, login, name)
        return client

    yield sign_up_on
    for client in sessions:
        await client.session.close()


async def handle_of(node, login: str) -> str:
    member, _hash = await node.db.read(residents.credentials, login)
    return member.handle


async def text_of(client, path: str) -> tuple[int, str]:
    response = await client.get(path)
    return response.status, html.unescape(await response.text())


async def test_a_block_holds_on_both_nodes_and_unblocking_restores(pair, resident):
    a, b = pair
    marie = await resident(a, "marie", "Marie D.")
    paul = await resident(b, "paul", "Paul B.")
    marie_ref = await publish(marie, titre="Tonte de pelouse")
    paul_ref = await publish(paul, titre="Cours de tricot")
    await deliver_outbox_batch(a.app, b.node_id)
    await deliver_outbox_batch(b.app, a.node_id)
    path = f"/annonces/{marie_ref}/repondre"
    sent = await post_form(paul, path, {"message": "Bonjour Marie"}, page=path)
    on_b = sent.headers["Location"]
    assert await deliver_due_of(b.app) == Sent(delivered=1)
    status, inbox = await text_of(marie, "/messages")
    on_a = re.search(r'href="(/messages/\d+)"', inbox).group(1)

    # Marie, on A, blocks Paul, of B, from their conversation.
    blocked = await post_form(marie, on_a + "/bloquer", {}, page=on_a + "/bloquer")
    assert blocked.status == 303
    (queued,) = await a.db.read(outbox.next_items, b.node_id, BLOCK, 10)
    assert msgpack.unpackb(queued.body) == {
        "node": a.node_id, "from": await handle_of(a, "marie"), "to": await handle_of(b, "paul"),
        "blocked": True, "at": NOW,
    }  # fmt: skip
    assert await deliver_due_of(a.app, BLOCK) == Sent(delivered=1)
    assert await b.db.read(block_store.is_blocked, Who(a.node_id, await handle_of(a, "marie")),
                           Who(b.node_id, await handle_of(b, "paul")))  # fmt: skip

    # Neither sees the other's annonces, on either node.
    assert "Cours de tricot" not in (await text_of(marie, "/"))[1]
    assert (await marie.get(f"/annonces/{paul_ref}")).status == 404
    assert "Tonte de pelouse" not in (await text_of(paul, "/"))[1]
    assert (await paul.get(f"/annonces/{marie_ref}")).status == 404
    # Neither writes: Paul's node refuses his reply, and says only that it is closed.
    _, paul_page = await text_of(paul, on_b)
    assert "Cette conversation est close" in paul_page and "bloqu" not in paul_page.lower()
    refused = await post_form(paul, on_b, {"message": "Pourquoi ?"}, page=on_b)
    assert refused.status == 409
    assert await b.db.read(outbox.pending_count, "message") == 0
    refused = await post_form(marie, on_a, {"message": "Non"}, page=on_a)
    assert refused.status == 409

    # Unblocking travels the same way, and restores both halves.
    token = await csrf_token(marie, "/personnes-bloquees")
    lifted = await post_form(marie, "/personnes-bloquees/debloquer",
                             {"noeud": b.key.node_id_text, "pseudo": await handle_of(b, "paul")},
                             csrf=token)  # fmt: skip
    assert lifted.status == 303
    assert await deliver_due_of(a.app, BLOCK) == Sent(delivered=1)
    async with b.db.engine.connect() as conn:
        assert (await conn.execute(select(member_blocks))).all() == []
    assert (await paul.get(f"/annonces/{marie_ref}")).status == 200
    assert "Cours de tricot" in (await text_of(marie, "/"))[1]
    again = await post_form(paul, on_b, {"message": "Merci"}, page=on_b)
    assert again.status == 303
    assert await deliver_due_of(b.app) == Sent(delivered=1)


async def test_a_message_that_crossed_a_block_on_the_way_is_refused_for_good(pair, resident):
    """Paul's node had not heard of the block yet: Marie's node refuses his message (409)."""
    a, b = pair
    marie = await resident(a, "marie", "Marie D.")
    paul = await resident(b, "paul", "Paul B.")
    marie_ref = await publish(marie, titre="Tonte de pelouse")
    await deliver_outbox_batch(a.app, b.node_id)
    path = f"/annonces/{marie_ref}/repondre"
    await post_form(paul, path, {"message": "Bonjour Marie"}, page=path)
    assert await deliver_due_of(b.app) == Sent(delivered=1)
    _, inbox = await text_of(marie, "/messages")
    on_a = re.search(r'href="(/messages/\d+)"', inbox).group(1)
    await post_form(marie, on_a + "/bloquer", {}, page=on_a + "/bloquer")
    _, listing = await text_of(paul, "/messages")
    on_b = re.search(r'href="(/messages/\d+)"', listing).group(1)
    sent = await post_form(paul, on_b, {"message": "Encore moi"}, page=on_b)
    assert sent.status == 303  # his node has not heard of the block yet
    assert await deliver_due_of(b.app) == Sent(refused=1)
    _, paul_page = await text_of(paul, on_b)
    assert "non remis" in paul_page


# --- Hostile notices ------------------------------------------------------------------


@pytest.fixture
async def victim(db, spare_db, tmp_path):
    """A node with a member, marie; PEER is its peer."""
    (node,) = await make_nodes(db, spare_db, tmp_path, ["Victime"], Clock())
    await node.db.write(peer_store.add_peer, PEER.node_id, "http://127.0.0.1:9", "Pair", NOW)
    await node.start(background_tasks=False)
    await node.db.write(residents.create_member, handle="marie", display_name="Marie D.",
                        password_hash="-", state="active", now=NOW)  # fmt: skip
    yield node
    await node.stop()


def notice(**changes) -> bytes:
    values = {"node": PEER.node_id, "from": "paul", "to": "marie", "blocked": True, "at": NOW}
    values.update(changes)
    return msgpack.packb({k: v for k, v in values.items() if v is not ...}, use_bin_type=True)


def deliver(node, body: bytes, key: NodeKey = PEER, **options):
    return signed_call(key, node, BLOCK_PATH, body, **options)


async def rows(node) -> list:
    async with node.db.engine.connect() as conn:
        return sorted(tuple(r) for r in await conn.execute(select(member_blocks)))


async def _replay(node):
    url = node.url + BLOCK_PATH
    body = notice()
    headers = signed_headers(PEER, "POST", url, body)
    first = await send("POST", url, body, headers)
    assert first.status == 200
    return await send("POST", url, body, headers)


HOSTILE = {
    "unsigned": (lambda n: send("POST", n.url + BLOCK_PATH, notice(),
                                {"Content-Type": CONTENT_TYPE}), 401, "unauthenticated", None),
    "unknown-node": (lambda n: deliver(n, notice(node=STRANGER.node_id), STRANGER),
                     403, "unknown-key", None),
    "signed-by-another-node": (lambda n: deliver(n, notice(node=OTHER.node_id)),
                               422, "bad-signature", "node"),
    "no-such-member": (lambda n: deliver(n, notice(to="personne")), 404, "not-found", "to"),
    "bad-handle": (lambda n: deliver(n, notice(to="Marie D.")), 422, "invalid", "to"),
    "from-the-future": (lambda n: deliver(n, notice(at=NOW + 3600)),
                        422, "from-the-future", "at"),
    "not-msgpack": (lambda n: deliver(n, b"\xc1\x00garbage"), 400, "malformed", None),
    "not-a-map": (lambda n: deliver(n, msgpack.packb([1, 2])), 400, "malformed", None),
    "an-extra-key": (lambda n: deliver(n, notice(reason="x")), 400, "malformed", "reason"),
    "a-missing-key": (lambda n: deliver(n, notice(blocked=...)), 400, "malformed", "blocked"),
    "blocked-not-a-bool": (lambda n: deliver(n, notice(blocked=1)), 400, "malformed", "blocked"),
    "short-node": (lambda n: deliver(n, notice(node=b"\x51" * 31)), 400, "malformed", "node"),
    "oversized": (lambda n: deliver(n, notice(**{"from": "p" * 300})), 413, "too-large", "body"),
    "replayed-signature": (_replay, 401, "replayed", None),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(HOSTILE))
async def test_a_hostile_notice_is_refused_with_its_problem_and_nothing_changes(victim, case):
    request, status, code, field = HOSTILE[case]
    before = await rows(victim)
    problem = assert_problem(await request(victim), status, code)
    assert problem.get("field") == field
    if case == "replayed-signature":  # the first, genuine, notice is applied once
        assert len(await rows(victim)) == 1
        return
    assert await rows(victim) == before


async def test_a_notice_is_applied_once_and_lifting_what_is_not_held_changes_nothing(victim):
    first = await deliver(victim, notice())
    assert (first.status, msgpack.unpackb(first.body)) == (200, {"applied": True})
    again = await deliver(victim, notice(at=NOW + 1), created=NOW + 1)
    assert msgpack.unpackb(again.body) == {"applied": False}
    assert len(await rows(victim)) == 1
    lifted = await deliver(victim, notice(blocked=False, at=NOW + 2), created=NOW + 2)
    assert msgpack.unpackb(lifted.body) == {"applied": True}
    nothing = await deliver(victim, notice(blocked=False, at=NOW + 3), created=NOW + 3)
    assert (nothing.status, msgpack.unpackb(nothing.body)) == (200, {"applied": False})
    assert await rows(victim) == []


async def test_a_remote_member_blocks_at_most_the_limit(victim):
    for n in range(limits.MAX_BLOCKS_PER_MEMBER):
        await victim.db.write(block_store.add_block, Who(PEER.node_id, "paul"),
                              Who(victim.node_id, f"m{n}"), name="", now=NOW)  # fmt: skip
    answer = await deliver(victim, notice())
    assert_problem(answer, 409, "conflict")
    assert not await victim.db.read(block_store.is_blocked, Who(PEER.node_id, "paul"),
                                    Who(victim.node_id, "marie"))  # fmt: skip


async def test_what_travels_is_the_notice_the_spec_shows(victim):
    body = encode_block(BlockNotice(PEER.node_id, "paul", "marie", True, NOW))
    assert body == notice()


async def test_a_node_s_members_hold_at_most_peer_max_blocks_here(victim):
    rows = [{"blocker_node": PEER.node_id, "blocker_handle": f"p{n // 100}",
             "blocked_node": victim.node_id,
             "blocked_handle": f"m{n % 100}" if n % 100 else "marie",
             "blocked_name": "", "created_at": NOW}
            for n in range(limits.PEER_MAX_BLOCKS)]  # fmt: skip
    async with victim.db.engine.begin() as conn:
        await conn.execute(member_blocks.insert(), rows)
    problem = assert_problem(await deliver(victim, notice(**{"from": "nouveau"})), 409, "conflict")
    assert problem["field"] == "node"
    assert not await victim.db.read(block_store.is_blocked, Who(PEER.node_id, "nouveau"),
                                    Who(victim.node_id, "marie"))  # fmt: skip
    # Lifting still works: a node may always take its members' blocks back.
    lifted = await deliver(victim, notice(**{"from": "p0", "blocked": False}))
    assert (lifted.status, msgpack.unpackb(lifted.body)) == (200, {"applied": True})


async def test_an_account_deleted_lifts_its_blocks_on_the_other_node_too(pair, resident):
    a, b = pair
    marie = await resident(a, "marie", "Marie D.")
    paul = await resident(b, "paul", "Paul B.")
    paul_ref = await publish(paul, titre="Cours de tricot")
    await deliver_outbox_batch(b.app, a.node_id)
    # Marie blocks Paul from his annonce: they never wrote to each other.
    path = f"/annonces/{paul_ref}/bloquer"
    assert (await post_form(marie, path, {}, page=path)).status == 303
    assert await deliver_due_of(a.app, BLOCK) == Sent(delivered=1)
    marie_handle = await handle_of(a, "marie")
    assert await b.db.read(block_store.is_blocked, Who(a.node_id, marie_handle),
                           Who(b.node_id, await handle_of(b, "paul")))  # fmt: skip

    deleted = await post_form(marie, "/compte/supprimer", {"mot_de_passe": PASSWORD},
                              page="/compte/supprimer")  # fmt: skip
    assert deleted.status == 200
    assert await a.db.read(block_store.blocks_by, Who(a.node_id, marie_handle)) == []
    assert await deliver_due_of(a.app, BLOCK) == Sent(delivered=1)
    async with b.db.engine.connect() as conn:
        assert (await conn.execute(select(member_blocks))).all() == []
    assert (await paul.get("/")).status == 200
