"""The one outbox (annonces for peers) and the destinations' delivery state, on both backends."""

from __future__ import annotations

from sqlalchemy import inspect

from protocol.identity import NodeKey
from storage import annonces as annonce_store
from storage import outbox
from storage import peers as peer_store
from storage.db import open_database
from storage.schema import metadata
from tests.factories import NOW, make_signed, next_revision

ORIGIN = NodeKey.from_seed(b"\x11" * 32)
PEER_A = NodeKey.from_seed(b"\x12" * 32).node_id
PEER_B = NodeKey.from_seed(b"\x13" * 32).node_id
PEER_C = NodeKey.from_seed(b"\x14" * 32).node_id


async def add_peers(db, *node_ids):
    for index, node_id in enumerate(node_ids):
        await db.write(peer_store.add_peer, node_id, f"http://127.0.0.1:{9000 + index}", "p", NOW)


async def stored(db, count=1):
    signed = [make_signed(ORIGIN) for _ in range(count)]
    await db.write(annonce_store.store_revisions, signed, now=NOW)
    return signed


def entries(signed):
    return [(s.id, s.annonce.origin) for s in signed]


async def test_enqueue_reaches_every_peer_but_the_source(db):
    await add_peers(db, PEER_A, PEER_B, PEER_C)
    signed = await stored(db, 3)
    await db.write(outbox.enqueue_annonces, entries(signed), source=PEER_B, now=NOW)
    assert await db.read(outbox.pending_counts) == {PEER_A: 3, PEER_C: 3}
    assert await db.write(outbox.take_annonces, PEER_B, 10) == []


async def test_enqueue_skips_the_origin_peer(db):
    await add_peers(db, ORIGIN.node_id, PEER_A)
    signed = await stored(db)
    await db.write(outbox.enqueue_annonces, entries(signed), source=None, now=NOW)
    assert await db.read(outbox.pending_counts) == {PEER_A: 1}


async def test_enqueueing_twice_keeps_one_row(db):
    await add_peers(db, PEER_A)
    signed = await stored(db)
    await db.write(outbox.enqueue_annonces, entries(signed), source=None, now=NOW)
    await db.write(outbox.enqueue_annonces, entries(signed), source=None, now=NOW + 5)
    assert await db.read(outbox.pending_counts) == {PEER_A: 1}


async def test_batches_come_oldest_first_and_removed_rows_are_gone(db):
    await add_peers(db, PEER_A)
    signed = await stored(db, 5)
    for offset, s in enumerate(signed):
        await db.write(outbox.enqueue_annonces, entries([s]), source=None, now=NOW + offset)
    first = await db.write(outbox.take_annonces, PEER_A, 3)
    assert first == [s.id for s in signed[:3]]
    await db.write(outbox.remove, PEER_A, outbox.ANNONCE, first)
    assert await db.write(outbox.take_annonces, PEER_A, 3) == [s.id for s in signed[3:]]


async def test_superseded_and_purged_rows_are_dropped_unsent(db):
    await add_peers(db, PEER_A)
    first, other = await stored(db, 2)
    await db.write(outbox.enqueue_annonces, entries([first, other]), source=None, now=NOW)
    second = next_revision(ORIGIN, first)
    await db.write(annonce_store.store_revisions, [second], now=NOW)
    await db.write(outbox.enqueue_annonces, entries([second]), source=None, now=NOW + 1)
    assert await db.write(outbox.take_annonces, PEER_A, 10) == [other.id, second.id]
    assert await db.read(outbox.pending_counts) == {PEER_A: 2}
    await db.write(annonce_store.purge_expired, NOW + 400 * 86400)
    assert await db.write(outbox.drop_dead) == 2
    assert await db.read(outbox.pending_counts) == {}


async def test_a_batch_of_dead_rows_does_not_hide_live_ones(db):
    await add_peers(db, PEER_A)
    dead = [make_signed(ORIGIN) for _ in range(4)]  # never stored
    live = await stored(db)
    await db.write(outbox.enqueue_annonces, entries(dead), source=None, now=NOW)
    await db.write(outbox.enqueue_annonces, entries(live), source=None, now=NOW + 1)
    assert await db.write(outbox.take_annonces, PEER_A, 2) == [live[0].id]


async def test_removing_a_peer_drops_its_outbox(db):
    await add_peers(db, PEER_A, PEER_B)
    signed = await stored(db)
    await db.write(outbox.enqueue_annonces, entries(signed), source=None, now=NOW)
    await db.write(peer_store.remove_peer, PEER_A)
    assert await db.read(outbox.pending_counts) == {PEER_B: 1}


async def test_failures_back_off_and_open_the_circuit_then_contact_closes_it(db):
    await add_peers(db, PEER_A)
    signed = await stored(db)
    await db.write(outbox.enqueue_annonces, entries(signed), source=None, now=NOW)
    assert await db.read(outbox.due_destinations, NOW) == [PEER_A]
    for attempt in range(1, 4):
        await db.write(outbox.record_failure, PEER_A, error="timeout", next_try=NOW + 10 * attempt, unavailable_after=3
        )
        await db.write(outbox.count_try, PEER_A, outbox.ANNONCE, [signed[0].id])
        peer = await db.read(peer_store.get_peer, PEER_A)
        assert peer.failures == attempt
        assert peer.state == ("unavailable" if attempt >= 3 else "active")
    assert peer.next_try == NOW + 30 and peer.last_error == "timeout"
    assert await db.read(outbox.due_destinations, NOW + 29) == []
    assert await db.read(outbox.next_due) == NOW + 30
    assert await db.write(outbox.waiting_destinations) == [(PEER_A, NOW + 30)]
    assert await db.read(outbox.due_destinations, NOW + 30) == [PEER_A]
    await db.write(outbox.record_contact, PEER_A, NOW + 31)
    peer = await db.read(peer_store.get_peer, PEER_A)
    assert (peer.state, peer.failures, peer.next_try, peer.last_error) == ("active", 0, None, None)
    assert peer.last_contact == NOW + 31


async def test_a_peer_without_work_is_never_due(db):
    await add_peers(db, PEER_A)
    assert await db.read(outbox.due_destinations, NOW) == []
    assert await db.read(outbox.next_due) is None
    assert await db.write(outbox.waiting_destinations) == []


async def test_the_outbox_survives_closing_the_database(db, tmp_path):
    if not db.is_sqlite:
        return  # the PostgreSQL database outlives every engine anyway
    await add_peers(db, PEER_A)
    signed = await stored(db)
    await db.write(outbox.enqueue_annonces, entries(signed), source=None, now=NOW)
    url = str(db.engine.url)
    await db.close()
    reopened = open_database(url)
    try:
        assert await reopened.write(outbox.take_annonces, PEER_A, 10) == [signed[0].id]
    finally:
        await reopened.close()


async def test_migrations_create_the_federation_tables_as_schema_py_says(db):
    def columns(sync_conn):
        inspector = inspect(sync_conn)
        return {
            name: {c["name"] for c in inspector.get_columns(name)}
            for name in ("outbox_items", "destinations", "peers")
        }

    async with db.engine.connect() as conn:
        found = await conn.run_sync(columns)
    for name, names in found.items():
        assert names == {c.name for c in metadata.tables[name].columns}
