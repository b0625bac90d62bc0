"""Hiding an annonce through the admin API: gone from this node's pages, never
forwarded to peers (outbox, fetch, anti-entropy), back when shown again."""

from __future__ import annotations

import os

import aiohttp
import pytest

from node import annonces
from node.keys import traffic_key
from node.sync import reconcile_with_peer
from protocol import federation as messages
from protocol.annonce import annonce_ref
from storage import peers as peer_store
from tests.node.harness import (
    Clock,
    deliver_outbox_batch,
    make_nodes,
    peer,
    served_admin,
    signed_call,
)


@pytest.fixture
async def line(db, spare_db, tmp_path):
    """C – A – B: A (with its admin socket) relays between C and B; no background tasks."""
    a, b, c = await make_nodes(db, spare_db, tmp_path, ["Maison A", "Maison B", "Maison C"],
                               Clock())  # fmt: skip
    await peer(a, b)
    await peer(a, c)
    for node in (a, b, c):
        await node.start(background_tasks=False)
    async with served_admin(a) as admin:
        yield a, b, c, admin
    for node in (a, b, c):
        await node.stop()


async def _page(node, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(node.url + path) as response:
        return response.status, await response.text()


async def _fetch(asker, node, ids: list[bytes]) -> list[bytes]:
    answer = await signed_call(asker.key, node, "/federation/v1/fetch", messages.encode_fetch(ids))
    assert answer.status == 200
    return messages.decode_envelopes(answer.body)


def _fetches_received(node) -> int:
    return node.app[traffic_key].received_by_endpoint.get("fetch", 0)


async def test_show_describes_an_annonce_of_ours_and_one_relayed_by_a_peer(line):
    a, _, c, admin = line
    own = await a.post("Cours de tricot")
    status, shown = await admin.call("GET", f"/v1/annonces/{own.annonce.ref}")
    assert status == 200
    assert (shown["ref"], shown["id"], shown["rev"]) == (own.annonce.ref, own.id.hex(), 1)
    assert (shown["own"], shown["origin_name"], shown["relayed_by"]) == (True, None, None)
    assert (shown["hidden"], shown["hidden_reason"], shown["open_reports"]) == (False, None, 0)
    assert (shown["title"], shown["author_handle"], shown["commune"]) == (
        "Cours de tricot", "marie", "47001")  # fmt: skip
    foreign = await c.post("Vélo à prêter")
    assert (await deliver_outbox_batch(c.app, a.node_id)).pushed == 1
    status, shown = await admin.call("GET", f"/v1/annonces/{foreign.annonce.ref}")
    assert status == 200 and shown["own"] is False
    assert (shown["origin"], shown["origin_name"]) == (c.key.node_id_text, "Maison C")
    assert (shown["relayed_by"], shown["relayed_by_name"]) == (c.key.node_id_text, "Maison C")


@pytest.mark.parametrize("method, suffix", [("GET", ""), ("POST", "/hide"), ("POST", "/unhide")])
async def test_an_unknown_or_malformed_ref_is_refused(line, method, suffix):
    a, _, _, admin = line
    unknown = annonce_ref(a.node_id, os.urandom(16))
    status, problem = await admin.call(method, f"/v1/annonces/{unknown}{suffix}")
    assert (status, problem["code"]) == (404, "not-found")
    assert unknown in problem["detail"]
    status, problem = await admin.call(method, f"/v1/annonces/pas-une-ref{suffix}")
    assert (status, problem["code"], problem["field"]) == (422, "invalid", "ref")


async def test_a_hidden_annonce_leaves_this_nodes_pages_until_shown_again(line):
    a, _, _, admin = line
    signed = await a.post("Cours de tricot")
    ref = signed.annonce.ref
    assert (await _page(a, f"/annonces/{ref}"))[0] == 200
    assert "Cours de tricot" in (await _page(a, "/"))[1]  # now in the visitors' page cache
    status, hidden = await admin.call("POST", f"/v1/annonces/{ref}/hide", {"reason": "arnaque"})
    assert status == 200 and hidden["hidden"] is True and hidden["hidden_reason"] == "arnaque"
    assert hidden["hidden_at"] == int(a.clock.now)
    assert (await _page(a, f"/annonces/{ref}"))[0] == 404
    assert "Cours de tricot" not in (await _page(a, "/"))[1]
    assert "Cours de tricot" not in (await _page(a, "/?q=tricot"))[1]
    status, shown = await admin.call("POST", f"/v1/annonces/{ref}/unhide")
    assert status == 200 and shown["hidden"] is False and shown["hidden_reason"] is None
    assert (await _page(a, f"/annonces/{ref}"))[0] == 200
    assert "Cours de tricot" in (await _page(a, "/"))[1]


async def test_a_hidden_annonce_and_its_new_revisions_are_not_forwarded_until_shown(line):
    a, b, c, admin = line
    first = await c.post("Vélo à prêter")
    assert (await deliver_outbox_batch(c.app, a.node_id)).pushed == 1  # queued on A for B
    ref = first.annonce.ref
    assert (await admin.call("POST", f"/v1/annonces/{ref}/hide", {"reason": "doublon"}))[0] == 200
    assert (await deliver_outbox_batch(a.app, b.node_id)).offered == 0
    # A new revision arrives hidden, and is not forwarded either.
    second = await annonces.revise(c.app, first.annonce.uid, title="Vélo à prêter (révisé)")
    assert (await deliver_outbox_batch(c.app, a.node_id)).pushed == 1
    status, shown = await admin.call("GET", f"/v1/annonces/{ref}")
    assert (shown["id"], shown["rev"]) == (second.id.hex(), 2)
    assert (shown["hidden"], shown["hidden_reason"]) == (True, "doublon")
    assert (await deliver_outbox_batch(a.app, b.node_id)).offered == 0
    assert await _fetch(b, a, [second.id]) == []
    # Anti-entropy: A does not push it, B asks once and not at every pass.
    peer_b = await a.db.read(peer_store.get_peer, b.node_id)
    peer_a = await b.db.read(peer_store.get_peer, a.node_id)
    assert (await reconcile_with_peer(a.app, peer_b)).sent == 0
    fetches = _fetches_received(a)
    first_pass = await reconcile_with_peer(b.app, peer_a)
    assert (first_pass.error, first_pass.received) == (None, 0)
    assert _fetches_received(a) == fetches + 1
    again = await reconcile_with_peer(b.app, peer_a)
    assert (again.error, again.received, _fetches_received(a)) == (None, 0, fetches + 1)
    assert not await b.holds(first.id) and not await b.holds(second.id)
    # Shown again: queued for B at once, and served.
    status, shown = await admin.call("POST", f"/v1/annonces/{ref}/unhide")
    assert status == 200 and shown["hidden"] is False
    assert (await deliver_outbox_batch(a.app, b.node_id)).pushed == 1
    assert await b.holds(second.id)
    assert await _fetch(b, a, [second.id]) == [second.envelope]


async def test_a_hidden_annonce_withdrawn_forwards_its_tombstone(line):
    a, b, _, admin = line
    live = await a.post("Cours de tricot")
    await admin.call("POST", f"/v1/annonces/{live.annonce.ref}/hide", {"reason": "essai"})
    assert (await deliver_outbox_batch(a.app, b.node_id)).offered == 0
    status, withdrawn = await admin.call("POST", f"/v1/annonces/{live.annonce.ref}/withdraw")
    assert status == 200
    status, shown = await admin.call("GET", f"/v1/annonces/{live.annonce.ref}")
    assert (shown["state"], shown["hidden"], shown["title"]) == ("withdrawn", True, "")
    assert (await deliver_outbox_batch(a.app, b.node_id)).pushed == 1
    assert await b.holds(bytes.fromhex(withdrawn["id"]))
