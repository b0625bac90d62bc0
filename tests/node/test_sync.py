"""Anti-entropy between real nodes: reconcile, fetch and push what differs, purge."""

from __future__ import annotations

from node import annonces
from node.courier import UNAVAILABLE_AFTER_FAILURES
from node.federation_state import PROMISED_IDS_TTL_S
from node.keys import ignored_ids_key, traffic_key
from node.sync import purge_once, reconcile_with_peer, sync_with_peers
from protocol import federation as messages
from protocol.limits import FEDERATION_MAX_ENVELOPES
from protocol.identity import NodeKey
from storage import annonces as annonce_store
from storage import outbox as outbox_store
from storage import peers as peer_store
from tests.factories import NOW, make_signed, next_revision
from tests.node.harness import (
    Clock,
    deliver_outbox_batch,
    eventually,
    make_nodes,
    peer,
    signed_call,
)

ELSEWHERE = NodeKey.from_seed(b"\x5e" * 32)  # an origin that is no peer of anyone here


async def stored_peer(node, other):
    return await node.db.read(peer_store.get_peer, other.node_id)


async def test_one_pass_makes_two_sets_equal_and_a_second_pass_transfers_nothing(
    db, spare_db, tmp_path
):
    a, b = await make_nodes(db, spare_db, tmp_path, ["A", "B"], Clock())
    await peer(a, b)
    await a.start(background_tasks=False)
    await b.start(background_tasks=False)
    try:
        only_a = [await a.post(f"Sur A {i}") for i in range(40)]
        only_b = [await b.post(f"Sur B {i}") for i in range(7)]
        shared = make_signed(ELSEWHERE, now=NOW)
        older = make_signed(ELSEWHERE, now=NOW)
        newer = next_revision(ELSEWHERE, older)
        await a.db.write(annonce_store.store_revisions, [shared, newer], now=NOW)
        await b.db.write(annonce_store.store_revisions, [shared, older], now=NOW)

        report = await reconcile_with_peer(a.app, await stored_peer(a, b))
        assert report.error is None
        assert report.received == len(only_b)
        assert report.sent == 1  # the newer revision; A's own wait in its outbox for B...
        assert not {s.id for s in only_a} & await b.current_ids()
        delivery = await deliver_outbox_batch(a.app, b.node_id)  # ...and its courier brings them
        assert delivery.pushed == len(only_a)
        assert await a.current_ids() == await b.current_ids()
        assert newer.id in await b.current_ids() and older.id not in await b.current_ids()

        again = await reconcile_with_peer(a.app, await stored_peer(a, b))
        assert (again.rounds, again.received, again.sent, again.error) == (1, 0, 0, None)
        assert (await stored_peer(a, b)).last_sync == NOW
    finally:
        await a.stop()
        await b.stop()


async def test_revisions_fetched_by_a_pass_are_forwarded_to_other_peers(db, spare_db, tmp_path):
    a, b, c = await make_nodes(db, spare_db, tmp_path, ["A", "B", "C"], Clock())
    await peer(a, b)
    await peer(b, c)
    for node in (a, b, c):
        await node.start(background_tasks=False)
    try:
        signed = make_signed(ELSEWHERE, now=NOW)
        await a.db.write(annonce_store.store_revisions, [signed], now=NOW)
        await reconcile_with_peer(b.app, await stored_peer(b, a))
        assert await b.holds(signed.id)
        assert await b.db.write(outbox_store.take_annonces, a.node_id, 10) == []  # not back to its source
        delivery = await deliver_outbox_batch(b.app, c.node_id)
        assert delivery.pushed == 1 and await c.holds(signed.id)
    finally:
        for node in (a, b, c):
            await node.stop()


async def test_a_node_catches_up_with_its_peers_as_soon_as_it_starts(db, spare_db, tmp_path):
    a, b = await make_nodes(db, spare_db, tmp_path, ["A", "B"], Clock())
    await peer(a, b)
    await a.start(background_tasks=False)
    try:
        posted = {(await a.post(f"Pendant l'absence {i}")).id for i in range(5)}
        await a.db.write(outbox_store.remove, b.node_id, outbox_store.ANNONCE, list(posted))  # no gossip: only anti-entropy
        await b.start()
        await eventually(lambda: _holds(b, posted))
    finally:
        await a.stop()
        await b.stop()


async def _holds(node, ids) -> bool:
    return ids <= await node.current_ids()


async def test_a_peer_coming_back_is_synced_and_its_outbox_drained_at_once(
    db, spare_db, tmp_path
):
    clock = Clock()
    a, b = await make_nodes(db, spare_db, tmp_path, ["A", "B"], clock)
    await peer(a, b)
    await a.start(background_tasks=False)
    signed = await a.post()
    for _ in range(UNAVAILABLE_AFTER_FAILURES):
        await deliver_outbox_batch(a.app, b.node_id)
    assert (await stored_peer(a, b)).state == "unavailable"
    await a.stop()
    await a.start()  # its back-off for B has hours to run
    clock.advance(1)
    await b.start()  # B's start-up pass calls A: A learns B is back
    try:
        await eventually(lambda: _state_is(a, b, "active"))
        await eventually(lambda: _outbox_empty(a))
        assert await b.holds(signed.id)
    finally:
        await a.stop()
        await b.stop()


async def _state_is(node, other, state) -> bool:
    return (await stored_peer(node, other)).state == state


async def _outbox_empty(node) -> bool:
    return not await node.db.read(outbox_store.pending_counts)


async def test_a_blocked_origin_is_neither_stored_nor_forwarded_nor_fetched_again(
    db, spare_db, tmp_path
):
    a, b, c = await make_nodes(db, spare_db, tmp_path, ["A", "B", "C"], Clock())
    await peer(a, b)
    await peer(b, c)
    for node in (a, b, c):
        await node.start(background_tasks=False)
    try:
        blocked = make_signed(ELSEWHERE, now=NOW)
        await a.db.write(annonce_store.store_revisions, [blocked], now=NOW)
        await b.db.write(peer_store.block_origin, ELSEWHERE.node_id, "spam", NOW)
        first = await reconcile_with_peer(b.app, await stored_peer(b, a))
        assert first.error is None and first.received == 0
        assert not await b.holds(blocked.id)
        assert blocked.id in b.app[ignored_ids_key]
        assert await b.db.read(outbox_store.pending_counts) == {}
        await reconcile_with_peer(c.app, await stored_peer(c, b))
        assert not await c.holds(blocked.id)
    finally:
        for node in (a, b, c):
            await node.stop()


async def test_a_pass_with_an_unreachable_peer_reports_and_records_the_failure(
    db, spare_db, tmp_path
):
    a, b = await make_nodes(db, spare_db, tmp_path, ["A", "B"], Clock())
    await peer(a, b)
    await a.start(background_tasks=False)
    try:
        report = await reconcile_with_peer(a.app, await stored_peer(a, b))
        assert "cannot reach" in report.error
        assert (await stored_peer(a, b)).failures == 1
    finally:
        await a.stop()


async def test_the_purge_drops_expired_annonces_and_their_outbox_rows(db, spare_db, tmp_path):
    clock = Clock()
    a, b = await make_nodes(db, spare_db, tmp_path, ["A", "B"], clock)
    await peer(a, b)
    await a.start(background_tasks=False)
    try:
        short = await a.post("Bientôt expirée", days=1)
        lasting = await a.post("Encore là", days=30)
        clock.advance(2 * 86400)
        assert await purge_once(a.app) == 1
        assert await a.current_ids() == {lasting.id}
        assert await a.db.write(outbox_store.take_annonces, b.node_id, 10) == [lasting.id]
        assert short.id not in await a.current_ids()
    finally:
        await a.stop()


async def test_an_edit_published_while_apart_wins_on_both_sides(db, spare_db, tmp_path):
    a, b = await make_nodes(db, spare_db, tmp_path, ["A", "B"], Clock())
    await peer(a, b)
    await a.start(background_tasks=False)
    await b.start(background_tasks=False)
    try:
        first = await a.post()
        await deliver_outbox_batch(a.app, b.node_id)
        edited = await annonces.revise(a.app, first.annonce.uid, title="Aide au jardin (haie)")
        await a.db.write(outbox_store.remove, b.node_id, outbox_store.ANNONCE, [edited.id])
        await reconcile_with_peer(b.app, await stored_peer(b, a))
        held = await b.db.read(annonce_store.get_by_id, edited.id)
        assert held is not None and held.annonce.title == "Aide au jardin (haie)"
        assert not await b.holds(first.id)
    finally:
        await a.stop()
        await b.stop()


async def test_a_pass_offers_what_the_peer_lacks_and_pushes_only_what_it_wants(
    db, spare_db, tmp_path
):
    """What the pass finds B lacks is offered, not pushed outright: B says no to what another
    of its peers is already pushing it."""
    a, b = await make_nodes(db, spare_db, tmp_path, ["A", "B"], Clock())
    await peer(a, b)
    other = NodeKey.from_seed(b"\x5d" * 32)
    await b.db.write(peer_store.add_peer, other.node_id, "http://127.0.0.1:9", "Autre", NOW)
    for node in (a, b):
        await node.start(background_tasks=False)
    try:
        coming, lacking = make_signed(ELSEWHERE, now=NOW), make_signed(ELSEWHERE, now=NOW)
        await a.db.write(annonce_store.store_revisions, [coming, lacking], now=NOW)
        promised = await signed_call(other, b, messages.ANNOUNCE_PATH,
                                     messages.encode_announce([coming.id]))  # fmt: skip
        assert messages.decode_want(promised.body) == [coming.id]
        report = await reconcile_with_peer(b.app, await stored_peer(b, a))
        assert report.error is None and report.received == 1  # the promised one is not fetched
        assert await b.holds(lacking.id) and not await b.holds(coming.id)
        report = await reconcile_with_peer(a.app, await stored_peer(a, b))
        assert report.error is None and report.sent == 0  # nor pushed by A's own pass
        assert b.app[traffic_key].received_by_endpoint.get("push", 0) == 0
    finally:
        for node in (a, b):
            await node.stop()


async def test_passes_with_two_peers_at_once_share_the_fetching(db, spare_db, tmp_path):
    """A node coming back passes with every peer at once: each revision is fetched once."""
    b, a, c = await make_nodes(db, spare_db, tmp_path, ["B", "A", "C"], Clock())
    await peer(b, a)
    await peer(b, c)
    for node in (a, b, c):
        await node.start(background_tasks=False)
    try:
        count = FEDERATION_MAX_ENVELOPES + 50
        revisions = [make_signed(ELSEWHERE, now=NOW) for _ in range(count)]
        for holder in (a, c):
            await holder.db.write(annonce_store.store_revisions, revisions, now=NOW)
        reports = await sync_with_peers(b.app, [await stored_peer(b, a), await stored_peer(b, c)])
        assert [report.error for report in reports] == [None, None]
        assert sum(report.received for report in reports) == count
        assert {r.id for r in revisions} <= await b.current_ids()
        fetches = sum(node.app[traffic_key].received_by_endpoint.get("fetch", 0)
                      for node in (a, c))  # fmt: skip
        assert fetches == 2  # two batches in all, where each pass alone would ask for two
    finally:
        for node in (a, b, c):
            await node.stop()


async def test_a_push_promised_and_not_made_is_fetched_from_a_peer_that_offered_it(
    db, spare_db, tmp_path
):
    """The first peer to announce is asked to push; it never does. Another peer offered the
    same id meanwhile and was told no: once the promise lapses, the id is fetched from it."""
    b, c = await make_nodes(db, spare_db, tmp_path, ["B", "C"], Clock())
    await peer(b, c)
    silent = NodeKey.from_seed(b"\x5f" * 32)
    await b.db.write(peer_store.add_peer, silent.node_id, "http://127.0.0.1:9", "Muet", NOW)
    for node in (b, c):
        await node.start(background_tasks=False)
    try:
        signed = make_signed(ELSEWHERE, now=NOW)
        await c.db.write(annonce_store.store_revisions, [signed], now=NOW)
        body = messages.encode_announce([signed.id])
        first = await signed_call(silent, b, messages.ANNOUNCE_PATH, body)
        second = await signed_call(c.key, b, messages.ANNOUNCE_PATH, body)
        assert messages.decode_want(first.body) == [signed.id]
        assert messages.decode_want(second.body) == []  # the silent peer's push is awaited
        assert not await b.holds(signed.id)
        b.clock.advance(PROMISED_IDS_TTL_S + 1)
        await eventually(lambda: b.holds(signed.id))
        assert c.app[traffic_key].received_by_endpoint.get("fetch", 0) == 1
    finally:
        for node in (b, c):
            await node.stop()
