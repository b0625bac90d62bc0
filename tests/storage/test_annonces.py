"""The annonce store, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from protocol.annonce import State
from protocol.identity import NodeKey
from storage import annonces as store
from storage.peers import block_origin
from tests.factories import NOW, make_signed, next_revision

KEY = NodeKey.from_seed(b"\x01" * 32)
OTHER = NodeKey.from_seed(b"\x02" * 32)


async def test_new_revisions_are_accepted_and_served_unchanged(db):
    first, second = make_signed(KEY), make_signed(OTHER)
    result = await db.write(store.store_revisions, [first, second], now=NOW)
    assert [s.id for s in result.accepted] == [first.id, second.id]
    envelopes = await db.read(store.envelopes_by_id, [first.id, second.id, b"\0" * 32])
    assert envelopes == {first.id: first.envelope, second.id: second.envelope}


async def test_a_duplicate_is_recognised_by_id(db):
    signed = make_signed(KEY)
    await db.write(store.store_revisions, [signed], now=NOW)
    again = await db.write(store.store_revisions, [signed], now=NOW)
    assert again.accepted == [] and again.duplicates == 1


async def test_newer_revision_replaces_older_and_older_cannot_come_back(db):
    first = make_signed(KEY)
    second = next_revision(KEY, first, title="Aide au jardin (haie)")
    await db.write(store.store_revisions, [first], now=NOW)
    result = await db.write(store.store_revisions, [second], now=NOW)
    assert [s.id for s in result.accepted] == [second.id]
    stale = await db.write(store.store_revisions, [first], now=NOW)
    assert stale.accepted == [] and stale.superseded == 1
    held = await db.read(store.get_annonce, KEY.node_id, first.annonce.uid)
    assert held is not None and held.id == second.id and held.annonce.rev == 2


async def test_within_one_batch_only_the_newest_revision_is_kept(db):
    first = make_signed(KEY)
    second = next_revision(KEY, first)
    result = await db.write(store.store_revisions, [second, first], now=NOW)
    assert [s.id for s in result.accepted] == [second.id]
    assert result.duplicates == 1


async def test_equal_rev_and_time_ties_break_on_the_higher_id(db):
    base = make_signed(KEY)
    a = next_revision(KEY, base, title="Version A")
    b = next_revision(KEY, base, title="Version B")
    winner = max(a, b, key=lambda s: s.id)
    loser = min(a, b, key=lambda s: s.id)
    await db.write(store.store_revisions, [loser], now=NOW)
    await db.write(store.store_revisions, [winner], now=NOW)
    await db.write(store.store_revisions, [loser], now=NOW)
    held = await db.read(store.get_annonce, KEY.node_id, base.annonce.uid)
    assert held is not None and held.id == winner.id


async def test_a_tombstone_replaces_the_annonce_and_stays_until_expiry(db):
    live = make_signed(KEY)
    tomb = next_revision(KEY, live, state=State.WITHDRAWN, title="", text="")
    await db.write(store.store_revisions, [live], now=NOW)
    await db.write(store.store_revisions, [tomb], now=NOW)
    assert (await db.write(store.store_revisions, [live], now=NOW)).superseded == 1
    held = await db.read(store.get_annonce, KEY.node_id, live.annonce.uid)
    assert held is not None and held.annonce.is_tombstone
    assert await db.write(store.purge_expired, live.annonce.expires - 1) == 0
    assert await db.write(store.purge_expired, live.annonce.expires) == 1
    assert await db.read(store.get_annonce, KEY.node_id, live.annonce.uid) is None


async def test_blocked_origin_is_neither_stored_nor_kept(db):
    kept = make_signed(KEY)
    await db.write(store.store_revisions, [kept], now=NOW)
    assert await db.write(block_origin, KEY.node_id, "spam", NOW) == 1
    result = await db.write(store.store_revisions, [make_signed(KEY)], now=NOW)
    assert result.accepted == [] and result.blocked == 1
    assert await db.read(store.list_annonces) == []


async def test_reconcile_items_are_current_revisions_in_order(db):
    first = make_signed(KEY, updated=NOW + 5)
    second = make_signed(OTHER)
    replaced = next_revision(KEY, first)
    await db.write(store.store_revisions, [first, second], now=NOW)
    await db.write(store.store_revisions, [replaced], now=NOW)
    items = await db.read(store.reconcile_items)
    assert items == sorted([(NOW, second.id), (NOW + 6, replaced.id)])


async def test_counts_by_origin_separate_live_and_withdrawn(db):
    live = make_signed(KEY)
    gone = make_signed(KEY)
    await db.write(store.store_revisions, [live, next_revision(KEY, gone, state=State.WITHDRAWN)], now=NOW
    )
    assert await db.read(store.counts_by_origin, now=NOW) == {KEY.node_id: {"live": 1, "withdrawn": 1}}
    expiry = max(live.annonce.expires, gone.annonce.expires)
    assert await db.read(store.counts_by_origin, now=expiry) == {}  # expired: waits for the purge


async def test_a_large_batch_is_stored_in_chunks(db):
    batch = [make_signed(KEY) for _ in range(1200)]
    result = await db.write(store.store_revisions, batch, now=NOW)
    assert len(result.accepted) == 1200
    assert len(await db.read(store.known_ids, [s.id for s in batch])) == 1200
