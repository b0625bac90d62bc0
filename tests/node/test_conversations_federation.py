"""Conversations across nodes: answers and replies delivered point to point, durably.

Two real node applications in one process, each on its own database (both
backends) and its own loopback HTTP server; residents use the real web forms
of their node, and the nodes call each other through their real peer clients
(tests/node/harness.py). Background tasks are off except in one test, so each
gossip and message delivery is a courier round the test takes
(``deliver_outbox_batch``, ``deliver_due_of``).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, replace

import msgpack
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from node import annonces
from node.courier import BACKOFF_BASE_S, deliver_round
from node.keys import peer_limits_key
from node.peer_limits import MESSAGES
from protocol import limits
from protocol.annonce import Category, Kind, State
from protocol.conversations import (
    MESSAGE_KEYS,
    MESSAGE_PATH,
    PrivateMessage,
    decode_private_message,
    encode_private_message,
)
from protocol.federation import CONTENT_TYPE
from protocol.identity import NodeKey
from protocol.limits import MAX_MESSAGE_CHARS
from storage import conversations as talk
from storage import desk as desk_store
from storage import directory as directory_store
from storage import outbox, residents
from storage import peers as peer_store
from storage.outbox import ANNONCE, MESSAGE
from storage.schema import conversations, messages, outbox_items
from tests.factories import NOW, make_signed
from tests.node.harness import (
    Clock,
    Node,
    Sent,
    deliver_due_of,
    deliver_outbox_batch,
    eventually,
    make_nodes,
    peer,
    send,
    signed_call,
    signed_headers,
)
from tests.node.test_federation_hostile import assert_problem
from tests.node.web.conftest import post_form, sign_up
from tests.node.web.test_annonces import publish

INBOX_LINK = re.compile(r'href="(/messages/\d+)"')


@pytest.fixture
async def pair(db, spare_db, tmp_path):
    """Two peered nodes, A and B, serving their real apps without background tasks."""
    a, b = await make_nodes(db, spare_db, tmp_path, ["Maison du Pin", "Centre de Montanou"], Clock())
    await peer(a, b)
    for node in (a, b):
        await node.start(background_tasks=False)
    yield a, b
    for node in (a, b):
        await node.stop()


@pytest.fixture
async def resident():
    """Sign up a resident on a node; their browser session (cookies) is the client."""
    sessions: list[TestClient] = []

    async def sign_up_on(node, handle: str, name: str) -> TestClient:
        client = TestClient(node.server)
        await client.start_server()  # the node's server runs already: nothing happens
        sessions.append(client)
        await sign_up(client, handle, name)
        return client

    yield sign_up_on
    for client in sessions:
        await client.session.close()  # not client.close(): the node owns its server


async def page(client, path: str) -> str:
    """The page's text, HTML entities read back (d&#39;ici is d'ici)."""
    response = await client.get(path)
    assert response.status == 200, path
    return html.unescape(await response.text())


async def answer(client, ref: str, text: str):
    path = f"/annonces/{ref}/repondre"
    return await post_form(client, path, {"message": text}, page=path)


async def stored_rows(node) -> dict:
    rows = {}
    async with node.db.engine.connect() as conn:
        for table in (conversations, messages, outbox_items):
            rows[table.name] = sorted(tuple(row) for row in await conn.execute(select(table)))
    return rows


async def marie_posts_on_a(a, b, resident) -> tuple[TestClient, str]:
    marie = await resident(a, "marie", "Marie D.")
    ref = await publish(marie)
    await deliver_outbox_batch(a.app, b.node_id)  # gossip: B holds it now
    return marie, ref


# --- The round trip ------------------------------------------------------------------


async def test_an_answer_reaches_the_author_on_her_node_and_her_reply_comes_back(pair, resident):
    a, b = pair
    marie, ref = await marie_posts_on_a(a, b, resident)
    paul = await resident(b, "paul", "Paul B.")
    sent = await answer(paul, ref, "Bonjour Marie,\nsamedi 10 h ?")
    assert sent.status == 303
    on_b = sent.headers["Location"]
    assert "en attente d'envoi" in await page(paul, on_b)

    (queued,) = await b.db.read(outbox.next_items, a.node_id, MESSAGE, 10)
    assert queued.destination == a.node_id
    assert list(msgpack.unpackb(queued.body)) == list(MESSAGE_KEYS)  # no e-mail, no phone
    assert await deliver_due_of(b.app) == Sent(delivered=1)
    assert await b.db.read(outbox.pending_count, MESSAGE) == 0
    assert "transmis" in await page(paul, on_b)

    inbox = await page(marie, "/messages")
    assert "1 nouveau message" in inbox and "Paul B." in inbox
    on_a = INBOX_LINK.search(inbox).group(1)
    assert "Bonjour Marie," in await page(marie, on_a)
    assert "nouveau message" not in await page(marie, "/messages")
    replied = await post_form(marie, on_a, {"message": "Parfait, à samedi !"}, page=on_a)
    assert replied.status == 303
    assert await deliver_due_of(a.app) == Sent(delivered=1)

    inbox = await page(paul, "/messages")
    assert "1 nouveau message" in inbox and "Marie D." in inbox
    thread = await page(paul, on_b)
    assert thread.index("Bonjour Marie,") < thread.index("Parfait, à samedi !")
    # Both nodes hold one conversation under one id, with the same two messages.
    held_a, held_b = await stored_rows(a), await stored_rows(b)
    assert [c[1] for c in held_a["conversations"]] == [c[1] for c in held_b["conversations"]]
    assert sorted(m[1] for m in held_a["messages"]) == sorted(m[1] for m in held_b["messages"])


async def test_only_the_two_members_can_read_a_conversation_from_another_node(pair, resident):
    """Other members of either node get 404; what Paul typed is shown escaped on Marie's node."""
    a, b = pair
    marie, ref = await marie_posts_on_a(a, b, resident)
    paul = await resident(b, "paul", "Paul B.")
    on_b = (await answer(paul, ref, 'Bonjour <script>alert(1)</script>')).headers["Location"]
    await deliver_due_of(b.app)
    on_a = INBOX_LINK.search(await page(marie, "/messages")).group(1)
    raw = await (await marie.get(on_a)).text()
    assert "Bonjour &lt;script&gt;alert(1)&lt;/script&gt;" in raw and "<script>alert" not in raw
    eve_on_a = await resident(a, "eve", "Ève")
    eve_on_b = await resident(b, "eve", "Ève")
    assert "Bonjour" not in await page(eve_on_a, "/messages")
    for client in (eve_on_a, eve_on_b):
        for number in range(1, 4):
            assert (await client.get(f"/messages/{number}")).status == 404
    assert (await eve_on_b.get(on_b)).status == 404


# --- Durable delivery ----------------------------------------------------------------


async def test_a_message_waits_with_back_off_while_the_node_is_down_and_arrives_in_order(
    pair, resident
):
    a, b = pair
    _marie, ref = await marie_posts_on_a(a, b, resident)
    paul = await resident(b, "paul", "Paul B.")
    on_b = (await answer(paul, ref, "Premier message")).headers["Location"]
    await a.stop()
    assert await deliver_due_of(b.app) == Sent(failed=1)
    second = await post_form(paul, on_b, {"message": "Second message"}, page=on_b)
    assert second.status == 303
    assert await deliver_due_of(b.app) == Sent()  # both wait for the back-off
    queued = await b.db.read(outbox.next_items, a.node_id, MESSAGE, 10)
    assert [d.tries for d in queued] == [1, 0]
    assert "cannot reach" in (await b.db.read(outbox.get_destination, a.node_id)).last_error

    await a.start(background_tasks=False)
    b.clock.advance(BACKOFF_BASE_S)
    assert await deliver_due_of(b.app) == Sent(delivered=2)
    async with a.db.engine.connect() as conn:
        bodies = (await conn.execute(select(messages.c.body).order_by(messages.c.id))).scalars()
        assert bodies.all() == ["Premier message", "Second message"]


async def test_a_node_that_asks_to_slow_down_still_gets_the_annonces_and_later_the_messages(
    pair, resident
):
    """A answers B's messages 429 (B's residents wrote too much): B's round goes on with
    the annonces, A stays active, and the messages go once A's bucket has refilled."""
    a, b = pair
    _marie, ref = await marie_posts_on_a(a, b, resident)
    paul = await resident(b, "paul", "Paul B.")
    await answer(paul, ref, "Premier message")
    for _ in range(limits.PEER_MESSAGE_BURST):  # A's bucket for B's messages, emptied
        a.app[peer_limits_key].take(b.node_id, "message", MESSAGES)  # ... by earlier traffic
    await b.post("Prêt de perceuse")
    done = await deliver_round(b.app, a.node_id)
    assert len(done.of(MESSAGE).failed) == 1 and done.error is not None
    assert done.of(ANNONCE).delivered  # the annonce did not wait behind the message
    state = await b.db.read(outbox.get_destination, a.node_id)
    assert (state.state, state.failures) == ("active", 0)
    assert state.next_try is not None and state.next_try > int(b.clock())
    b.clock.advance(120)  # the bucket refills; the back-off has run out
    assert await deliver_due_of(b.app) == Sent(delivered=1)


async def test_a_message_the_node_refuses_for_good_is_marked_not_delivered(pair, resident):
    """The annonce was withdrawn before the answer arrived: 404, not retried, the writer told."""
    a, b = pair
    _marie, ref = await marie_posts_on_a(a, b, resident)
    paul = await resident(b, "paul", "Paul B.")
    on_b = (await answer(paul, ref, "Encore disponible ?")).headers["Location"]
    key = (await stored_rows(b))["conversations"][0][1]
    conversation = await b.db.read(talk.conversation_by_key, key)
    await annonces.withdraw(a.app, conversation.annonce_uid)
    assert await deliver_due_of(b.app) == Sent(refused=1)
    assert await b.db.read(outbox.pending_count, MESSAGE) == 0
    assert "non remis" in await page(paul, on_b)
    assert (await stored_rows(a))["messages"] == []


async def test_the_courier_delivers_in_the_background(db, spare_db, tmp_path, resident):
    a, b = await make_nodes(db, spare_db, tmp_path, ["A", "B"], Clock())
    await peer(a, b)
    for node in (a, b):
        await node.start()  # gossip, anti-entropy and the message courier all run
    try:
        marie = await resident(a, "marie", "Marie D.")
        ref = await publish(marie)
        paul = await resident(b, "paul", "Paul B.")

        async def b_shows_it():
            return (await paul.get(f"/annonces/{ref}")).status == 200

        await eventually(b_shows_it)
        on_b = (await answer(paul, ref, "Bonjour de Montanou")).headers["Location"]

        async def marie_has_it():
            return INBOX_LINK.search(await page(marie, "/messages"))

        on_a = (await eventually(marie_has_it)).group(1)
        await post_form(marie, on_a, {"message": "Bonjour du Pin"}, page=on_a)

        async def paul_has_the_reply():
            return "Bonjour du Pin" in await page(paul, on_b)

        await eventually(paul_has_the_reply)
    finally:
        for node in (a, b):
            await node.stop()


# --- Nodes that are not peers -----------------------------------------------------------


async def test_an_annonce_from_a_node_that_is_not_a_peer_cannot_be_answered_and_says_so(
    pair, resident
):
    _a, b = pair
    far = make_signed(NodeKey.from_seed(b"\x71" * 32))  # relayed from further away
    report = await annonces.receive(b.app, [far.envelope], source=None)
    assert len(report.accepted) == 1
    paul = await resident(b, "paul", "Paul B.")
    form = await page(paul, f"/annonces/{far.annonce.ref}/repondre")
    assert "Vous ne pouvez pas répondre à cette annonce d'ici" in form
    assert 'name="message"' not in form
    before = await stored_rows(b)
    refused = await answer(paul, far.annonce.ref, "Bonjour ?")
    assert refused.status == 409
    assert "Vous ne pouvez pas répondre" in await refused.text()
    assert await stored_rows(b) == before


async def test_a_reply_to_a_node_that_is_no_longer_a_peer_goes_through_the_directory(
    pair, resident
):
    """No longer peers, the two nodes still know each other's documents: the reply goes."""
    a, b = pair
    marie, ref = await marie_posts_on_a(a, b, resident)
    paul = await resident(b, "paul", "Paul B.")
    await answer(paul, ref, "Bonjour Marie")
    await deliver_due_of(b.app)
    on_a = INBOX_LINK.search(await page(marie, "/messages")).group(1)
    await a.db.write(peer_store.remove_peer, b.node_id)
    shown = await page(marie, on_a)
    assert "Vous ne pouvez plus écrire" not in shown and "Bonjour Marie" in shown
    sent = await post_form(marie, on_a, {"message": "Toujours là ?"}, page=on_a)
    assert sent.status == 303
    assert await deliver_due_of(a.app) == Sent(delivered=1)


async def test_a_node_the_operator_refuses_cannot_be_written_to_and_says_so(pair, resident):
    a, b = pair
    marie, ref = await marie_posts_on_a(a, b, resident)
    paul = await resident(b, "paul", "Paul B.")
    await answer(paul, ref, "Bonjour Marie")
    await deliver_due_of(b.app)
    on_a = INBOX_LINK.search(await page(marie, "/messages")).group(1)
    await a.db.write(peer_store.remove_peer, b.node_id)
    await a.db.write(directory_store.refuse_node, b.node_id, "spam", NOW)
    shown = await page(marie, on_a)
    assert "Vous ne pouvez plus écrire à Paul B. d'ici" in shown and "Bonjour Marie" in shown
    before = await stored_rows(a)
    refused = await post_form(marie, on_a, {"message": "Toujours là ?"}, page=on_a)
    assert refused.status == 409
    assert await stored_rows(a) == before


async def test_a_queued_message_for_a_node_removed_since_goes_through_the_directory(
    pair, resident
):
    a, b = pair
    _marie, ref = await marie_posts_on_a(a, b, resident)
    paul = await resident(b, "paul", "Paul B.")
    await answer(paul, ref, "Bonjour Marie")
    await b.db.write(peer_store.remove_peer, a.node_id)
    assert await deliver_due_of(b.app) == Sent(delivered=1)


async def test_what_travels_is_exactly_what_was_queued(pair, resident):
    a, b = pair
    _marie, ref = await marie_posts_on_a(a, b, resident)
    paul = await resident(b, "paul", "Paul B.")
    await answer(paul, ref, "Bonjour\u202f!")
    (queued,) = await b.db.read(outbox.next_items, a.node_id, MESSAGE, 10)
    message = decode_private_message(queued.body)
    marie_handle = (await a.db.read(residents.member_named, "marie")).handle
    paul_handle = (await b.db.read(residents.member_named, "paul")).handle
    assert (message.recipient, message.sender_handle, message.sender_name) == (
        marie_handle, paul_handle, "Paul B.")  # fmt: skip
    assert (message.sender_node, message.annonce_origin) == (b.node_id, a.node_id)
    assert message.text == "Bonjour\u202f!"


# --- Hostile peers, through the real HTTP app ---------------------------------------------

PEER = NodeKey.from_seed(b"\x61" * 32)  # an accepted peer, with a resident "paul"
STRANGER = NodeKey.from_seed(b"\x62" * 32)  # a key nobody accepted
OTHER = NodeKey.from_seed(b"\x63" * 32)
CONVERSATION = b"\x10" * 16


@dataclass
class Victim:
    node: Node
    annonce_uid: bytes


@pytest.fixture
async def victim(db, spare_db, tmp_path):
    """A node with a member, marie, who wrote an open annonce; PEER is its peer."""
    (node,) = await make_nodes(db, spare_db, tmp_path, ["Victime"], Clock())
    await node.db.write(peer_store.add_peer, PEER.node_id, "http://127.0.0.1:9", "Pair", NOW)
    await node.start(background_tasks=False)
    member = await node.db.write(residents.create_member, handle="marie", display_name="Marie D.",
                                           password_hash="-", state="active", now=NOW)  # fmt: skip
    signed = await annonces.publish(node.app, annonces.Author("marie", "Marie D."),
                                      annonces.Draft(kind=Kind.OFFER, category=Category.SERVICE,
                                                       title="Aide au jardin", text="Haies.",
                                                       commune="47001"))  # fmt: skip
    await node.db.write(residents.record_authorship, signed.annonce.uid, member.id, NOW)
    yield Victim(node, signed.annonce.uid)
    await node.stop()


def message_body(victim: Victim, **changes) -> bytes:
    """A valid message from PEER's paul to marie, answering her annonce, with ``changes``."""
    message = PrivateMessage(
        conversation=CONVERSATION, annonce_origin=victim.node.node_id,
        annonce_uid=victim.annonce_uid, recipient="marie", sender_handle="paul",
        sender_name="Paul B.", sender_node=PEER.node_id, message_id=b"\x20" * 16,
        text="Bonjour Marie", sent_at=NOW,
    )  # fmt: skip
    return encode_private_message(replace(message, **changes))


def raw_body(victim, **changes) -> bytes:
    """Like message_body, as a plain map, so that keys can be added, removed, mistyped."""
    values = msgpack.unpackb(message_body(victim))
    values.update(changes)
    return msgpack.packb({k: v for k, v in values.items() if v is not ...}, use_bin_type=True)


def deliver(victim: Victim, body: bytes, key: NodeKey = PEER, **options):
    return signed_call(key, victim.node, MESSAGE_PATH, body, **options)


async def refused(victim: Victim, answer_coroutine, status: int, code: str, field=None) -> dict:
    before = await stored_rows(victim.node)
    problem = assert_problem(await answer_coroutine, status, code)
    assert problem.get("field") == field
    assert await stored_rows(victim.node) == before
    return problem


HOSTILE = {
    "unsigned": (lambda v: send("POST", v.node.url + MESSAGE_PATH, message_body(v),
                                {"Content-Type": CONTENT_TYPE}), 401, "unauthenticated", None),
    "unknown-peer": (lambda v: deliver(v, message_body(v, sender_node=STRANGER.node_id), STRANGER),
                     403, "unknown-key", None),
    "no-such-member": (lambda v: deliver(v, message_body(v, recipient="nobody")),
                       404, "not-found", "to"),
    "not-the-author": (lambda v: deliver(v, message_body(v, recipient="paul")),
                       404, "not-found", "to"),
    "no-such-annonce": (lambda v: deliver(v, message_body(v, annonce_uid=b"\x99" * 16)),
                        404, "not-found", "uid"),
    "text-too-long": (lambda v: deliver(v, message_body(v, text="a" * (MAX_MESSAGE_CHARS + 1))),
                      413, "too-large", "text"),
    "body-too-large": (lambda v: deliver(v, raw_body(v, text="🙂" * 9000)),
                       413, "too-large", "body"),
    "not-msgpack": (lambda v: deliver(v, b"\xc1\x00garbage"), 400, "malformed", None),
    "not-a-map": (lambda v: deliver(v, msgpack.packb([1, 2, 3])), 400, "malformed", None),
    "an-email-key": (lambda v: deliver(v, raw_body(v, email="paul@example.org")),
                     400, "malformed", "email"),
    "a-missing-key": (lambda v: deliver(v, raw_body(v, id=...)), 400, "malformed", "id"),
    "a-short-id": (lambda v: deliver(v, raw_body(v, id=b"\x20" * 15)), 400, "malformed", "id"),
    "desk-false": (lambda v: deliver(v, raw_body(v, desk=False)), 400, "malformed", "desk"),
    "desk-not-a-bool": (lambda v: deliver(v, raw_body(v, desk=1)), 400, "malformed", "desk"),
    "empty-text": (lambda v: deliver(v, message_body(v, text=" \n ")), 422, "invalid", "text"),
    "control-character": (lambda v: deliver(v, message_body(v, text="a\u202eb")),
                          422, "invalid", "text"),
    "from-the-future": (lambda v: deliver(v, message_body(v, sent_at=NOW + 3600)),
                        422, "from-the-future", "sent"),
    "sender-of-another-node": (lambda v: deliver(v, message_body(v, sender_node=OTHER.node_id)),
                               422, "bad-signature", "node"),
    "annonce-of-a-third-node": (lambda v: deliver(v, message_body(v, annonce_origin=OTHER.node_id)),
                                422, "invalid", "origin"),
    "reply-without-conversation": (lambda v: deliver(v, message_body(v, annonce_origin=PEER.node_id)),
                                   404, "not-found", "conversation"),
    "wrong-content-type": (lambda v: deliver(v, message_body(v), content_type="text/plain"),
                           415, "unsupported-media-type", None),
    "replayed-signature": (lambda v: _replay(v), 401, "replayed", None),
}  # fmt: skip


async def _replay(victim: Victim):
    url = victim.node.url + MESSAGE_PATH
    body = message_body(victim, text="une seule fois")
    headers = signed_headers(PEER, "POST", url, body)
    first = await send("POST", url, body, headers)
    assert first.status == 200
    return await send("POST", url, body, headers)


@pytest.mark.parametrize("case", sorted(HOSTILE))
async def test_a_hostile_message_is_refused_with_its_problem_and_nothing_is_stored(victim, case):
    request, status, code, field = HOSTILE[case]
    if case == "replayed-signature":  # the first, genuine, delivery is stored
        answer = await request(victim)
        assert_problem(answer, status, code)
        assert len((await stored_rows(victim.node))["messages"]) == 1
        return
    await refused(victim, request(victim), status, code, field)


async def test_a_retried_delivery_is_stored_once(victim):
    body = message_body(victim)
    first = await deliver(victim, body)
    assert (first.status, msgpack.unpackb(first.body)) == (200, {"duplicate": False})
    again = await deliver(victim, body)  # signed afresh, as a retry is
    assert (again.status, msgpack.unpackb(again.body)) == (200, {"duplicate": True})
    rows = await stored_rows(victim.node)
    assert len(rows["conversations"]) == 1 and len(rows["messages"]) == 1


async def test_a_message_written_at_the_sender_s_desk_is_marked(victim):
    """``desk`` (docs/protocol-federation.md 8.1): stored, and marked as the association's."""
    answer = await deliver(victim, message_body(victim, desk=True))
    assert answer.status == 200
    [message] = (await stored_rows(victim.node))["messages"]
    message_id, conversation_id = message[0], message[2]  # messages.c.id, .conversation_id
    assert await victim.node.db.read(desk_store.desk_message_ids, conversation_id) == {message_id}


async def test_a_conversation_id_cannot_be_taken_over(victim):
    assert (await deliver(victim, message_body(victim))).status == 200
    hijack = message_body(victim, sender_handle="eve", message_id=b"\x21" * 16)
    await refused(victim, deliver(victim, hijack), 409, "conflict", "conversation")
    other_id = message_body(victim, conversation=b"\x11" * 16, message_id=b"\x22" * 16)
    await refused(victim, deliver(victim, other_id), 409, "conflict", "conversation")


async def test_a_new_conversation_needs_an_open_annonce(victim):
    await annonces.revise(victim.node.app, victim.annonce_uid, state=State.FULFILLED)
    await refused(victim, deliver(victim, message_body(victim)), 409, "conflict")


async def test_open_federation_takes_no_message_from_a_node_that_is_not_a_peer(
    db, spare_db, tmp_path
):
    """Its signature is accepted, but this node would have no way to answer."""
    (node,) = await make_nodes(db, spare_db, tmp_path, ["Ouverte"], Clock())
    node.options["federation"] = "open"
    await node.start(background_tasks=False)
    try:
        open_node = Victim(node, annonce_uid=b"\x01" * 16)
        body = message_body(open_node, sender_node=STRANGER.node_id)
        problem = await refused(open_node, deliver(open_node, body, STRANGER), 403, "unknown-key")
        assert "known nodes only" in problem["detail"]
    finally:
        await node.stop()
