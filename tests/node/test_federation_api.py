"""The federation API's answers, endpoint by endpoint, as docs/protocol-federation.md says."""

from __future__ import annotations

import pytest

from node.federation_state import PROMISED_IDS_TTL_S
from node.keys import promised_ids_key
from protocol import federation as messages
from protocol.identity import NodeKey
from protocol.nodedoc import open_node_document
from protocol.reconcile import Reconciler, SortedItems
from storage import annonces as annonce_store
from storage import peers as peer_store
from tests.factories import NOW, make_signed
from tests.node.harness import Clock, make_nodes, send, signed_call, silent_peer
from tests.ports import free_port

PEER = NodeKey.from_seed(b"\x71" * 32)
SECOND_PEER = NodeKey.from_seed(b"\x72" * 32)
STRANGER = NodeKey.from_seed(b"\x73" * 32)


@pytest.fixture
async def node(db, spare_db, tmp_path):
    (node,) = await make_nodes(db, spare_db, tmp_path, ["Nœud"], Clock())
    for key in (PEER, SECOND_PEER):
        await node.db.write(peer_store.add_peer, key.node_id, "http://127.0.0.1:9", "Pair", NOW)
    await node.start(background_tasks=False)
    yield node
    await node.stop()


async def test_announce_answers_the_ids_we_lack(node):
    held = await node.post()
    unknown = b"\x05" * 32
    answer = await signed_call(PEER, node, messages.ANNOUNCE_PATH,
                               messages.encode_announce([held.id, unknown, unknown]))  # fmt: skip
    assert answer.status == 200 and answer.content_type == messages.CONTENT_TYPE
    assert messages.decode_want(answer.body) == [unknown]


async def test_an_id_promised_by_one_peer_is_not_asked_of_another_meanwhile(node):
    unknown = b"\x06" * 32
    body = messages.encode_announce([unknown])
    first = await signed_call(PEER, node, messages.ANNOUNCE_PATH, body)
    second = await signed_call(SECOND_PEER, node, messages.ANNOUNCE_PATH, body)
    again = await signed_call(PEER, node, messages.ANNOUNCE_PATH, body)
    assert messages.decode_want(first.body) == [unknown]
    assert messages.decode_want(second.body) == []
    assert messages.decode_want(again.body) == [unknown]  # the same peer retrying


async def test_a_peer_that_does_not_keep_its_promise_cannot_hold_an_id_back(node):
    """Re-announcing an id without pushing it does not renew the promise: once it lapses,
    a peer that offered it meanwhile goes first, and that one is asked of no more."""
    # The second peer takes the node's fetch and never answers: if the node's own loop
    # hands it the lapsed promise before the test does, its fetch is still running at the end.
    stalled = await silent_peer(free_port())
    try:
        await node.db.write(peer_store.remove_peer, SECOND_PEER.node_id)
        await node.db.write(peer_store.add_peer, SECOND_PEER.node_id,
                            str(stalled.make_url("")).rstrip("/"), "Pair lent", NOW)  # fmt: skip
        unknown = b"\x07" * 32
        body = messages.encode_announce([unknown])
        asked = await signed_call(PEER, node, messages.ANNOUNCE_PATH, body)
        assert messages.decode_want(asked.body) == [unknown]
        waiting = await signed_call(SECOND_PEER, node, messages.ANNOUNCE_PATH, body)
        assert messages.decode_want(waiting.body) == []  # it stands by
        for _ in range(4):  # every few seconds, longer than a promise lasts in all
            node.clock.advance(PROMISED_IDS_TTL_S / 3)
            again = await signed_call(PEER, node, messages.ANNOUNCE_PATH, body)
        assert messages.decode_want(again.body) == []
        promised = node.app[promised_ids_key]
        promised.lapsed()  # what the node's own loop does every second, if it has not yet
        assert promised.holder(unknown) == SECOND_PEER.node_id  # fetched from it now
    finally:
        await stalled.close()


async def test_push_stores_new_revisions_and_counts_the_rest(node):
    fresh, known = make_signed(PEER), make_signed(PEER)
    await node.db.write(annonce_store.store_revisions, [known], now=NOW)
    answer = await signed_call(PEER, node, messages.PUSH_PATH,
                               messages.encode_push([fresh.envelope, known.envelope]))  # fmt: skip
    assert answer.status == 200
    assert messages.decode_push_outcome(answer.body) == messages.PushOutcome(1, 1, 0, 0, ())
    stored = await node.db.read(annonce_store.get_by_id, fresh.id)
    assert stored.source == PEER.node_id and stored.envelope == fresh.envelope


async def test_fetch_answers_the_envelopes_held_in_the_order_asked(node):
    first, second = await node.post("Premier"), await node.post("Second")
    body = messages.encode_fetch([second.id, b"\x07" * 32, first.id])
    answer = await signed_call(PEER, node, messages.FETCH_PATH, body)
    assert messages.decode_envelopes(answer.body) == [second.envelope, first.envelope]


async def test_reconcile_rounds_through_the_api_find_the_difference(node):
    posted = [await node.post(f"Annonce {i}") for i in range(50)]
    ours = SortedItems((s.annonce.updated, s.id) for s in posted[:45])
    reconciler = Reconciler(ours)
    message, need = reconciler.initiate(), []
    while message is not None:
        answer = await signed_call(PEER, node, messages.RECONCILE_PATH,
                                   messages.encode_reconcile(message))  # fmt: skip
        assert answer.status == 200
        step = reconciler.reconcile(messages.decode_reconcile(answer.body))
        need += step.need_ids
        message = step.next_message
    assert sorted(need) == sorted(s.id for s in posted[45:])


async def test_node_answers_our_signed_node_document(node):
    answer = await signed_call(PEER, node, messages.NODE_PATH)
    assert answer.status == 200
    doc = open_node_document(messages.decode_node_document(answer.body))
    assert doc.node_id == node.node_id and doc.url == node.url


async def test_open_federation_accepts_any_well_signed_node(db, spare_db, tmp_path):
    (node,) = await make_nodes(db, spare_db, tmp_path, ["Ouvert"], Clock())
    node.options = {"federation": "open"}
    await node.start(background_tasks=False)
    try:
        signed = make_signed(STRANGER)
        answer = await signed_call(STRANGER, node, messages.PUSH_PATH,
                                   messages.encode_push([signed.envelope]))  # fmt: skip
        assert answer.status == 200 and await node.holds(signed.id)
    finally:
        await node.stop()


async def test_unknown_paths_and_methods_are_problem_documents(node):
    missing = await signed_call(PEER, node, "/federation/v1/nothing-here")
    assert (missing.status, missing.json()["code"]) == (404, "not-found")
    wrong = await signed_call(PEER, node, messages.PUSH_PATH)  # a GET
    assert (wrong.status, wrong.json()["code"]) == (405, "method-not-allowed")
    unsigned = await send("GET", node.url + messages.PUSH_PATH)
    assert (unsigned.status, unsigned.json()["code"]) == (401, "unauthenticated")


async def test_an_id_pushed_and_not_kept_is_not_asked_for_again(node):
    """Blocked, superseded or invalid: offered again, it is not wanted."""
    blocked = make_signed(STRANGER)
    await node.db.write(peer_store.block_origin, STRANGER.node_id, "essai", NOW)
    pushed = await signed_call(PEER, node, messages.PUSH_PATH,
                               messages.encode_push([blocked.envelope]))  # fmt: skip
    assert messages.decode_push_outcome(pushed.body).blocked == 1
    offered = await signed_call(SECOND_PEER, node, messages.ANNOUNCE_PATH,
                                messages.encode_announce([blocked.id]))  # fmt: skip
    assert messages.decode_want(offered.body) == []


async def test_an_annonce_refused_as_from_the_future_may_be_asked_for_later(node):
    early = make_signed(PEER, now=NOW + 3600)
    pushed = await signed_call(PEER, node, messages.PUSH_PATH,
                               messages.encode_push([early.envelope]))  # fmt: skip
    assert pushed.status == 422
    offered = await signed_call(SECOND_PEER, node, messages.ANNOUNCE_PATH,
                                messages.encode_announce([early.id]))  # fmt: skip
    assert messages.decode_want(offered.body) == [early.id]
