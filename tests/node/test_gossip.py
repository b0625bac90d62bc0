"""Push gossip between real nodes over loopback HTTP: hops, dedupe, outbox, back-off."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from node.courier import BACKOFF_MAX_S, UNAVAILABLE_AFTER_FAILURES, retry_delay
from node.errors import ConfigError
from node.keys import sync_trigger_key, traffic_key
from node.peer_client import PeerTimeouts
from node.settings import load_settings
from storage import annonces as annonce_store
from storage import outbox as outbox_store
from storage.outbox import RESIDENTS
from storage import peers as peer_store
from tests.node.harness import (
    Clock,
    deliver_outbox_batch,
    eventually,
    make_nodes,
    outboxes_empty,
    peer,
    silent_peer,
)


async def test_a_revision_posted_on_a_crosses_b_and_reaches_c(db, spare_db, tmp_path):
    """A–B–C in a line: posted on A, seen on C, relayed by B."""
    a, b, c = await make_nodes(db, spare_db, tmp_path, ["A", "B", "C"], Clock())
    await peer(a, b)
    await peer(b, c)
    for node in (a, b, c):
        await node.start()
    try:
        signed = await a.post()
        await eventually(lambda: c.holds(signed.id))
        held = await c.db.read(annonce_store.get_by_id, signed.id)
        assert held.envelope == signed.envelope
        assert held.source == b.node_id
        await eventually(lambda: outboxes_empty(a, b, c))
    finally:
        for node in (a, b, c):
            await node.stop()


async def test_in_a_triangle_each_node_gets_each_body_once_and_gossip_stops(
    db, spare_db, tmp_path
):
    """Dedupe by id ends loops: a ring settles with empty outboxes and one copy each."""
    a, b, c = await make_nodes(db, spare_db, tmp_path, ["A", "B", "C"], Clock())
    await peer(a, b)
    await peer(b, c)
    await peer(c, a)
    for node in (a, b, c):
        await node.start()
    try:
        posted = [await a.post(f"Annonce {i}") for i in range(5)]
        posted += [await b.post(f"Annonce B{i}") for i in range(5)]
        ids = {s.id for s in posted}
        for node in (a, b, c):
            await eventually(lambda node=node: _holds_all(node, ids))
        await eventually(lambda: outboxes_empty(a, b, c))
        for node in (a, b, c):
            assert await node.current_ids() == ids
    finally:
        for node in (a, b, c):
            await node.stop()


async def _holds_all(node, ids) -> bool:
    return ids <= await node.current_ids()


async def test_ids_go_first_and_a_peer_that_holds_them_gets_no_body(db, spare_db, tmp_path):
    clock = Clock()
    a, b = await make_nodes(db, spare_db, tmp_path, ["A", "B"], clock)
    await peer(a, b)
    await a.start(background_tasks=False)
    await b.start(background_tasks=False)
    try:
        signed = await a.post()
        first = await deliver_outbox_batch(a.app, b.node_id)
        assert (first.offered, first.pushed, first.error) == (1, 1, None)
        assert await b.holds(signed.id)
        # Queued again (as a relay would after a loop): offered, not pushed.
        await a.db.write(outbox_store.enqueue_annonces, [(signed.id, signed.annonce.origin)], source=None,
                                   now=int(clock()))  # fmt: skip
        requests_before = b.app[traffic_key].requests_received
        again = await deliver_outbox_batch(a.app, b.node_id)
        assert (again.offered, again.pushed) == (1, 0)
        assert b.app[traffic_key].requests_received == requests_before + 1  # the announce only
        assert await a.db.read(outbox_store.pending_counts) == {}
    finally:
        await a.stop()
        await b.stop()


async def test_the_outbox_survives_a_restart_and_delivers_afterwards(db, spare_db, tmp_path):
    """Accepted while the peer was down, delivered once it is up, after our own restart."""
    clock = Clock()
    a, b = await make_nodes(db, spare_db, tmp_path, ["A", "B"], clock)
    await peer(a, b)
    await a.start(background_tasks=False)
    signed = await a.post()
    failed = await deliver_outbox_batch(a.app, b.node_id)  # B is not running
    assert failed.error is not None
    await a.stop()  # "restart": a new application on the same database
    assert await a.db.write(outbox_store.take_annonces, b.node_id, 10) == [signed.id]
    await b.start(background_tasks=False)
    await a.start()  # with its background tasks this time
    try:
        await eventually(lambda: b.holds(signed.id))
        await eventually(lambda: outboxes_empty(a))
    finally:
        await a.stop()
        await b.stop()


async def test_a_failing_peer_backs_off_turns_unavailable_and_comes_back(db, spare_db, tmp_path):
    clock = Clock()
    a, b = await make_nodes(db, spare_db, tmp_path, ["A", "B"], clock)
    await peer(a, b)
    await a.start(background_tasks=False)
    try:
        signed = await a.post()
        delays = []
        for attempt in range(1, UNAVAILABLE_AFTER_FAILURES + 1):
            delivery = await deliver_outbox_batch(a.app, b.node_id)
            assert delivery.error and "cannot reach" in delivery.error
            held = await a.db.read(peer_store.get_peer, b.node_id)
            assert held.failures == attempt
            assert held.state == ("unavailable" if attempt == UNAVAILABLE_AFTER_FAILURES
                                  else "active")  # fmt: skip
            delays.append(held.next_try - int(clock()))
            # (the annonce also waits for A's own residents' saved searches: not a peer)
            due = await a.db.read(outbox_store.due_destinations, int(clock()))
            assert [d for d in due if d != RESIDENTS] == []
            clock.advance(delays[-1])
            due = await a.db.read(outbox_store.due_destinations, int(clock()))
            assert [d for d in due if d != RESIDENTS] == [b.node_id]
        assert delays == sorted(delays) and delays[-1] > delays[0]
        await b.start(background_tasks=False)
        delivery = await deliver_outbox_batch(a.app, b.node_id)
        assert delivery.error is None and delivery.pushed == 1
        held = await a.db.read(peer_store.get_peer, b.node_id)
        assert (held.state, held.failures, held.next_try) == ("active", 0, None)
        assert await b.holds(signed.id)
        everyone, asked = await a.app[sync_trigger_key].wait(0)
        assert asked == {b.node_id}  # back from unavailable: anti-entropy at once
    finally:
        await a.stop()
        await b.stop()


def test_retry_delays_grow_exponentially_with_jitter_and_are_capped():
    assert [retry_delay(n, lambda: 0.0) for n in range(1, 6)] == [2, 4, 8, 16, 32]
    assert retry_delay(40, lambda: 0.0) == BACKOFF_MAX_S
    assert retry_delay(3, lambda: 1.0) == 6  # up to a quarter taken off at random
    assert retry_delay(40, lambda: 0.999) >= BACKOFF_MAX_S * 0.75


async def test_a_peer_that_never_answers_times_out_while_we_keep_serving(
    db, spare_db, tmp_path, aiohttp_client
):
    """Our client gives up after its timeout and marks the peer; /healthz answers meanwhile."""
    clock = Clock()
    a, silent = await make_nodes(db, spare_db, tmp_path, ["A", "Silent"], clock)
    await peer(a, silent)
    fake = await silent_peer(silent.port)
    await a.start(background_tasks=False, peer_timeouts=PeerTimeouts(connect=1, total=0.5))
    try:
        await a.post()
        health = await aiohttp_client(a.server)
        delivery_task = asyncio.create_task(deliver_outbox_batch(a.app, silent.node_id))
        await asyncio.sleep(0.1)
        response = await health.get("/healthz")
        assert response.status == 200 and not delivery_task.done()
        delivery = await delivery_task
        assert "no answer within 0.5 s" in delivery.error
        held = await a.db.read(peer_store.get_peer, silent.node_id)
        assert held.failures == 1 and "no answer" in held.last_error
    finally:
        await a.stop()
        await fake.close()


async def test_a_peer_refusing_a_batch_for_good_is_not_retried_nor_backed_off(
    db, spare_db, tmp_path
):
    """A peer that answers 400 to an announce is up: the batch is dropped, not retried."""
    clock = Clock()
    a, odd = await make_nodes(db, spare_db, tmp_path, ["A", "Odd"], clock)
    await peer(a, odd)
    refusing = web.Application()

    async def refuse(request):
        await request.read()
        return web.json_response({"type": "urn:troc:problem:malformed", "status": 400,
                                  "code": "malformed", "detail": "no"}, status=400,
                                 content_type="application/problem+json")  # fmt: skip

    refusing.router.add_route("*", "/{tail:.*}", refuse)
    fake = TestServer(refusing, host="127.0.0.1", port=odd.port)
    await fake.start_server()
    await a.start(background_tasks=False)
    try:
        await a.post()
        delivery = await deliver_outbox_batch(a.app, odd.node_id)
        assert "HTTP 400 malformed" in delivery.error
        assert await a.db.read(outbox_store.pending_counts) == {}
        assert (await a.db.read(peer_store.get_peer, odd.node_id)).failures == 0
    finally:
        await a.stop()
        await fake.close()


@pytest.mark.parametrize("value", [-1, 10_001])
def test_a_gossip_delay_out_of_range_is_refused(tmp_path, value):
    with pytest.raises(ConfigError, match="gossip_delay_ms must be 0 to 10000"):
        load_settings(tmp_path, {"TROC_GOSSIP_DELAY_MS": str(value)})
