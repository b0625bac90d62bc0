"""Deleting an account across nodes: real nodes A, B and C on loopback, both backends.

Marie, a resident of A, has annonces held on B and C (A peers with B, B with
C) and a conversation with Paul, a resident of B. She downloads her data,
then deletes her account on A's web view: her annonces go from every node,
Paul sees « ancien membre » on B, and what was in flight is dropped or
refused. Then the departure endpoint is attacked directly.
"""

from __future__ import annotations

import json

import msgpack
import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from node import erasure
from node.courier import BACKOFF_MAX_S
from protocol.annonce import State
from protocol.departure import DEPARTURE_PATH, Departure, encode_departure
from protocol.identity import NodeKey
from storage import annonces as annonce_store
from storage import conversations as talk
from storage import outbox, residents
from storage.errors import Conflict, NotFound
from storage.outbox import MESSAGE
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
    served_admin,
    signed_call,
    signed_headers,
)
from tests.node.test_conversations_federation import answer, page, stored_rows
from tests.node.test_federation_hostile import assert_problem
from tests.node.web.conftest import PASSWORD, post_form, sign_up
from tests.node.web.test_annonces import publish


@pytest.fixture
async def line(db, spare_db, tmp_path):
    """A - B - C, peered in a line, without background tasks."""
    a, b, c = await make_nodes(db, spare_db, tmp_path, ["Maison A", "Centre B", "Club C"], Clock())
    await peer(a, b)
    await peer(b, c)
    for node in (a, b, c):
        await node.start(background_tasks=False)
    yield a, b, c
    for node in (a, b, c):
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


async def gossip(a, b, c) -> None:
    await deliver_outbox_batch(a.app, b.node_id)
    await deliver_outbox_batch(b.app, c.node_id)


async def state_of(node, origin: bytes, ref_uid: bytes):
    held = await node.db.read(annonce_store.get_annonce, origin, ref_uid)
    return held.annonce.state if held is not None else None


async def talking(line, resident):
    """Marie (A) posts two annonces, held on B and C; Paul (B) answers one; she replies."""
    a, b, c = line
    marie = await resident(a, "marie", "Marie Dupont")
    ref = await publish(marie)
    await publish(marie, titre="Prêt de perceuse", categorie="objet")
    await gossip(a, b, c)
    paul = await resident(b, "paul", "Paul Bernard")
    sent = await answer(paul, ref, "Bonjour Marie, samedi ?")
    assert sent.status == 303
    on_b = sent.headers["Location"].split("#")[0]
    assert await deliver_due_of(b.app) == Sent(delivered=1)
    (entry,) = await a.db.read(talk.inbox, (await a.db.read(residents.credentials, "marie"))[0].id)
    on_a = f"/messages/{entry.conversation.id}"
    replied = await post_form(marie, on_a, {"message": "Oui, 10 h."}, page=on_a)
    assert replied.status == 303
    assert await deliver_due_of(a.app) == Sent(delivered=1)
    return marie, paul, on_a, on_b, entry.conversation


async def test_a_resident_downloads_then_deletes_and_every_node_forgets_her(line, resident):
    a, b, c = line
    marie, paul, on_a, on_b, conversation = await talking(line, resident)
    response = await post_form(marie, "/compte/donnees", {}, page="/compte/donnees")
    assert response.status == 200
    data = json.loads(await response.read())["tables"]
    assert {row["title"] for row in data["annonces"]} == {"Aide au jardin", "Prêt de perceuse"}
    assert {m["body"] for m in data["messages"]} == {"Bonjour Marie, samedi ?", "Oui, 10 h."}
    (held,) = data["conversations"]
    assert held["replier_name"] == "Paul Bernard"
    assert held["replier_handle"].startswith("paul-bernard-")
    uids = [bytes.fromhex(row["uid"]) for row in data["annonces"]]

    # A last reply, still queued when she deletes her account, never goes.
    last = await post_form(marie, on_a, {"message": "Message jamais parti"}, page=on_a)
    assert last.status == 303
    deleted = await post_form(marie, "/compte/supprimer", {"mot_de_passe": PASSWORD},
                              page="/compte/supprimer")  # fmt: skip
    assert deleted.status == 200
    assert await a.db.read(outbox.pending_count, MESSAGE) == 0
    assert await a.db.read(outbox.pending_count, erasure.DEPARTURE) == 1

    # Paul writes before B hears of it: A refuses the message for good, B marks it refused.
    late = await post_form(paul, on_b, {"message": "Vous êtes là ?"}, page=on_b)
    assert late.status == 303
    assert await deliver_due_of(b.app) == Sent(refused=1)
    assert "non remis" in await page(paul, on_b)

    marie_on_b = (a.node_id, conversation.author.handle)
    paul_on_b = (b.node_id, conversation.replier.handle)
    await b.db.write(lambda conn: conn.execute(member_blocks.insert(), [
        {"blocker_node": marie_on_b[0], "blocker_handle": marie_on_b[1],
         "blocked_node": paul_on_b[0], "blocked_handle": paul_on_b[1], "created_at": NOW},
        {"blocker_node": paul_on_b[0], "blocker_handle": paul_on_b[1],
         "blocked_node": a.node_id, "blocked_handle": "quelqu-un", "created_at": NOW}]))
    await deliver_outbox_batch(a.app, b.node_id)  # the departure, then the tombstones
    async with b.db.engine.connect() as conn:
        blocks = [(r.blocker_node, r.blocker_handle) for r in
                  await conn.execute(select(member_blocks))]  # fmt: skip
    assert blocks == [paul_on_b]  # hers went with her; his own choice stays
    await deliver_outbox_batch(b.app, c.node_id)
    for node in (a, b, c):
        for uid in uids:
            assert await state_of(node, a.node_id, uid) is State.WITHDRAWN, node.name
            held = await node.db.read(annonce_store.get_annonce, a.node_id, uid)
            assert "Marie Dupont" not in held.annonce.author_name
    seen = await page(paul, on_b)
    assert "ancien membre" in seen and "Marie Dupont" not in seen
    assert "message supprimé" in seen and "Oui, 10 h." not in seen
    assert "Message jamais parti" not in seen
    assert "Bonjour Marie, samedi ?" in seen
    assert "Cette personne a supprimé son compte" in seen
    assert await a.db.read(talk.conversation_by_key, conversation.key) is None

    # The same notice sent again (a retried delivery) is a duplicate: nothing changes.
    again = encode_departure(Departure(conversation.key, a.node_id, conversation.author.handle,
                                       NOW))  # fmt: skip
    answered = await signed_call(a.key, b, DEPARTURE_PATH, again)
    assert answered.status == 200 and msgpack.unpackb(answered.body) == {"duplicate": True}


async def test_the_operator_deletes_a_member_once_and_then_it_is_a_conflict(line, resident):
    a, b, c = line
    await talking(line, resident)
    marie = (await a.db.read(residents.credentials, "marie"))[0]
    async with served_admin(a) as admin:
        status, done = await admin.call("POST", "/v1/members/marie/delete")
        assert status == 200, done
        assert (done["handle"], done["annonces_withdrawn"], done["departures_queued"],
                done["conversations_deleted"]) == (marie.handle, 2, 1, 1)  # fmt: skip
        status, problem = await admin.call("POST", f"/v1/members/{marie.handle}/delete")
        assert (status, problem["code"]) == (409, "conflict")
        for name in ("personne", "marie", "%2e%2e", "x" * 300):
            status, problem = await admin.call("POST", f"/v1/members/{name}/delete")
            assert (status, problem["code"]) == (404, "not-found"), name
        status, _ = await admin.call("GET", "/v1/members/marie/delete")
        assert status == 405
    with pytest.raises(Conflict):
        await erasure.delete_named(a.app, marie.handle)
    with pytest.raises(NotFound):
        await erasure.delete_named(a.app, "personne")


# --- Hostile departure notices -----------------------------------------------------------


async def hostile_setup(line, resident):
    a, b, c = line
    marie, paul, on_a, on_b, conversation = await talking(line, resident)
    return a, b, c, paul, on_b, conversation


async def paul_still_sees_marie(paul, on_b) -> None:
    seen = await page(paul, on_b)
    assert "Marie Dupont" in seen and "Oui, 10 h." in seen and "ancien membre" not in seen


async def test_departure_notices_that_are_not_the_departed_nodes_own_are_refused(line, resident):
    a, b, c, paul, on_b, conversation = await hostile_setup(line, resident)
    marie = conversation.author.handle
    cases = [
        # signed by C, a peer of B, naming A as the member's node
        (c.key, Departure(conversation.key, a.node_id, marie, NOW), 422, "bad-signature"),
        # C speaking of its own member, for a conversation that is not C's
        (c.key, Departure(conversation.key, c.node_id, marie, NOW), 404, "not-found"),
        # A, but for Paul, B's own member
        (a.key, Departure(conversation.key, a.node_id, conversation.replier.handle, NOW), 404,
         "not-found"),
        # A, for a conversation B does not hold
        (a.key, Departure(bytes(16), a.node_id, marie, NOW), 404, "not-found"),
        # dated in the future
        (a.key, Departure(conversation.key, a.node_id, marie, NOW + 3600), 422, "from-the-future"),
    ]
    before = await stored_rows(b)
    for key, notice, status, code in cases:
        answered = await signed_call(key, b, DEPARTURE_PATH, encode_departure(notice))
        assert_problem(answered, status, code)
    stranger = NodeKey.from_seed(b"\x66" * 32)
    notice = Departure(conversation.key, stranger.node_id, marie, NOW)
    assert_problem(await signed_call(stranger, b, DEPARTURE_PATH, encode_departure(notice)),
                   403, "unknown-key")  # fmt: skip
    assert await stored_rows(b) == before
    await paul_still_sees_marie(paul, on_b)


async def test_malformed_oversized_unsigned_and_replayed_notices_are_refused(line, resident):
    a, b, c, paul, on_b, conversation = await hostile_setup(line, resident)
    good = Departure(conversation.key, a.node_id, conversation.author.handle, NOW)
    raw = msgpack.unpackb(encode_departure(good))
    bodies = [
        (msgpack.packb({**raw, "name": "Marie"}), 400, "malformed"),
        (msgpack.packb({**raw, "conversation": b"short"}), 400, "malformed"),
        (msgpack.packb({**raw, "handle": "Marie Dupont"}), 422, "invalid"),
        (msgpack.packb({**raw, "handle": "m" * 400}), 413, "too-large"),
        (b"\xc1\xc1", 400, "malformed"),
        (msgpack.packb([1, 2, 3]), 400, "malformed"),
    ]
    before = await stored_rows(b)
    for body, status, code in bodies:
        assert_problem(await signed_call(a.key, b, DEPARTURE_PATH, body), status, code)
    assert await stored_rows(b) == before
    url = b.url + DEPARTURE_PATH
    body = encode_departure(good)
    unsigned = await send("POST", url, body, {"Content-Type": "application/msgpack"})
    assert unsigned.status == 401
    await paul_still_sees_marie(paul, on_b)
    headers = signed_headers(a.key, "POST", url, body)
    first = await send("POST", url, body, headers)
    assert first.status == 200 and msgpack.unpackb(first.body) == {"duplicate": False}
    replayed = await send("POST", url, body, headers)
    assert replayed.status == 401
    assert "ancien membre" in await page(paul, on_b)


async def test_departures_wait_in_the_queue_while_the_other_node_is_down(line, resident):
    a, b, c = line
    marie, paul, on_a, on_b, conversation = await talking(line, resident)
    await b.stop()
    deleted = await post_form(marie, "/compte/supprimer", {"mot_de_passe": PASSWORD},
                              page="/compte/supprimer")  # fmt: skip
    assert deleted.status == 200
    assert (await deliver_due_of(a.app, erasure.DEPARTURE)).delivered == 0  # B is down
    assert await a.db.read(outbox.pending_count, erasure.DEPARTURE) == 1
    await b.start(background_tasks=False)
    a.clock.advance(BACKOFF_MAX_S)
    assert await deliver_due_of(a.app, erasure.DEPARTURE) == Sent(delivered=1)
    on_b_now = await b.db.read(talk.conversation_by_key, conversation.key)
    assert on_b_now.author.left and on_b_now.author.name == ""  # Paul's client saw the old B
