"""The per-peer outbox and the peers' delivery state, on SQLite and PostgreSQL."""

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
        await peer_store.add_peer(db, node_id, f"http://127.0.0.1:{9000 + index}", "p", NOW)


async def stored(db, count=1):
    signed = [make_signed(ORIGIN) for _ in range(count)]
    await annonce_store.store_revisions(db, signed, now=NOW)
    return signed


def entries(signed):
    return [(s.id, s.annonce.origin) for s in signed]


async def test_enqueue_reaches_every_peer_but_the_source(db):
    await add_peers(db, PEER_A, PEER_B, PEER_C)
    signed = await stored(db, 3)
    await outbox.enqueue(db, entries(signed), source=PEER_B, now=NOW)
    assert await outbox.pending_counts(db) == {PEER_A: 3, PEER_C: 3}
    assert await outbox.next_batch(db, PEER_B, 10) == []


async def test_enqueue_skips_the_origin_peer(db):
    await add_peers(db, ORIGIN.node_id, PEER_A)
    signed = await stored(db)
    await outbox.enqueue(db, entries(signed), source=None, now=NOW)
    assert await outbox.pending_counts(db) == {PEER_A: 1}


async def test_enqueueing_twice_keeps_one_row(db):
    await add_peers(db, PEER_A)
    signed = await stored(db)
    await outbox.enqueue(db, entries(signed), source=None, now=NOW)
    await outbox.enqueue(db, entries(signed), source=None, now=NOW + 5)
    assert await outbox.pending_counts(db) == {PEER_A: 1}


async def test_batches_come_oldest_first_and_removed_rows_are_gone(db):
    await add_peers(db, PEER_A)
    signed = await stored(db, 5)
    for offset, s in enumerate(signed):
        await outbox.enqueue(db, entries([s]), source=None, now=NOW + offset)
    first = await outbox.next_batch(db, PEER_A, 3)
    assert first == [s.id for s in signed[:3]]
    await outbox.remove(db, PEER_A, first)
    assert await outbox.next_batch(db, PEER_A, 3) == [s.id for s in signed[3:]]


async def test_superseded_and_purged_rows_are_dropped_unsent(db):
    await add_peers(db, PEER_A)
    first, other = await stored(db, 2)
    await outbox.enqueue(db, entries([first, other]), source=None, now=NOW)
    second = next_revision(ORIGIN, first)
    await annonce_store.store_revisions(db, [second], now=NOW)
    await outbox.enqueue(db, entries([second]), source=None, now=NOW + 1)
    assert await outbox.next_batch(db, PEER_A, 10) == [other.id, second.id]
    assert await outbox.pending_counts(db) == {PEER_A: 2}
    await annonce_store.purge_expired(db, NOW + 400 * 86400)
    assert await outbox.drop_dead(db) == 2
    assert await outbox.pending_counts(db) == {}


async def test_a_batch_of_dead_rows_does_not_hide_live_ones(db):
    await add_peers(db, PEER_A)
    dead = [make_signed(ORIGIN) for _ in range(4)]  # never stored
    live = await stored(db)
    await outbox.enqueue(db, entries(dead), source=None, now=NOW)
    await outbox.enqueue(db, entries(live), source=None, now=NOW + 1)
    assert await outbox.next_batch(db, PEER_A, 2) == [live[0].id]


async def test_removing_a_peer_drops_its_outbox(db):
    await add_peers(db, PEER_A, PEER_B)
    signed = await stored(db)
    await outbox.enqueue(db, entries(signed), source=None, now=NOW)
    await peer_store.remove_peer(db, PEER_A)
    assert await outbox.pending_counts(db) == {PEER_B: 1}


async def test_failures_back_off_and_open_the_circuit_then_contact_closes_it(db):
    await add_peers(db, PEER_A)
    signed = await stored(db)
    await outbox.enqueue(db, entries(signed), source=None, now=NOW)
    assert await outbox.due_peers(db, NOW) == [PEER_A]
    for attempt in range(1, 4):
        await peer_store.record_failure(
            db, PEER_A, error="timeout", next_try=NOW + 10 * attempt, unavailable_after=3
        )
        await outbox.count_try(db, PEER_A, [signed[0].id])
        peer = await peer_store.get_peer(db, PEER_A)
        assert peer.failures == attempt
        assert peer.state == ("unavailable" if attempt >= 3 else "active")
    assert peer.next_try == NOW + 30 and peer.last_error == "timeout"
    assert await outbox.due_peers(db, NOW + 29) == []
    assert await outbox.next_due(db) == NOW + 30
    assert await outbox.waiting_peers(db) == [(PEER_A, NOW + 30)]
    assert await outbox.due_peers(db, NOW + 30) == [PEER_A]
    await peer_store.record_contact(db, PEER_A, NOW + 31)
    peer = await peer_store.get_peer(db, PEER_A)
    assert (peer.state, peer.failures, peer.next_try, peer.last_error) == ("active", 0, None, None)
    assert peer.last_contact == NOW + 31


async def test_a_peer_without_work_is_never_due(db):
    await add_peers(db, PEER_A)
    assert await outbox.due_peers(db, NOW) == []
    assert await outbox.next_due(db) is None
    assert await outbox.waiting_peers(db) == []


async def test_the_outbox_survives_closing_the_database(db, tmp_path):
    if not db.is_sqlite:
        return  # the PostgreSQL database outlives every engine anyway
    await add_peers(db, PEER_A)
    signed = await stored(db)
    await outbox.enqueue(db, entries(signed), source=None, now=NOW)
    url = str(db.engine.url)
    await db.close()
    reopened = open_database(url)
    try:
        assert await outbox.next_batch(reopened, PEER_A, 10) == [signed[0].id]
    finally:
        await reopened.close()


async def test_migrations_create_the_federation_tables_as_schema_py_says(db):
    def columns(sync_conn):
        inspector = inspect(sync_conn)
        return {
            name: {c["name"] for c in inspector.get_columns(name)}
            for name in ("outbox", "peers")
        }

    async with db.engine.connect() as conn:
        found = await conn.run_sync(columns)
    for name, names in found.items():
        assert names == {c.name for c in metadata.tables[name].columns}
