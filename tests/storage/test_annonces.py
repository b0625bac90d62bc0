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
    result = await store.store_revisions(db, [first, second], now=NOW)
    assert [s.id for s in result.accepted] == [first.id, second.id]
    envelopes = await store.envelopes_by_id(db, [first.id, second.id, b"\0" * 32])
    assert envelopes == {first.id: first.envelope, second.id: second.envelope}


async def test_a_duplicate_is_recognised_by_id(db):
    signed = make_signed(KEY)
    await store.store_revisions(db, [signed], now=NOW)
    again = await store.store_revisions(db, [signed], now=NOW)
    assert again.accepted == [] and again.duplicates == 1


async def test_newer_revision_replaces_older_and_older_cannot_come_back(db):
    first = make_signed(KEY)
    second = next_revision(KEY, first, title="Aide au jardin (haie)")
    await store.store_revisions(db, [first], now=NOW)
    result = await store.store_revisions(db, [second], now=NOW)
    assert [s.id for s in result.accepted] == [second.id]
    stale = await store.store_revisions(db, [first], now=NOW)
    assert stale.accepted == [] and stale.superseded == 1
    held = await store.get_annonce(db, KEY.node_id, first.annonce.uid)
    assert held is not None and held.id == second.id and held.annonce.rev == 2


async def test_within_one_batch_only_the_newest_revision_is_kept(db):
    first = make_signed(KEY)
    second = next_revision(KEY, first)
    result = await store.store_revisions(db, [second, first], now=NOW)
    assert [s.id for s in result.accepted] == [second.id]
    assert result.duplicates == 1


async def test_equal_rev_and_time_ties_break_on_the_higher_id(db):
    base = make_signed(KEY)
    a = next_revision(KEY, base, title="Version A")
    b = next_revision(KEY, base, title="Version B")
    winner = max(a, b, key=lambda s: s.id)
    loser = min(a, b, key=lambda s: s.id)
    await store.store_revisions(db, [loser], now=NOW)
    await store.store_revisions(db, [winner], now=NOW)
    await store.store_revisions(db, [loser], now=NOW)
    held = await store.get_annonce(db, KEY.node_id, base.annonce.uid)
    assert held is not None and held.id == winner.id


async def test_a_tombstone_replaces_the_annonce_and_stays_until_expiry(db):
    live = make_signed(KEY)
    tomb = next_revision(KEY, live, state=State.WITHDRAWN, title="", text="")
    await store.store_revisions(db, [live], now=NOW)
    await store.store_revisions(db, [tomb], now=NOW)
    assert (await store.store_revisions(db, [live], now=NOW)).superseded == 1
    held = await store.get_annonce(db, KEY.node_id, live.annonce.uid)
    assert held is not None and held.annonce.is_tombstone
    assert await store.purge_expired(db, live.annonce.expires - 1) == 0
    assert await store.purge_expired(db, live.annonce.expires) == 1
    assert await store.get_annonce(db, KEY.node_id, live.annonce.uid) is None


async def test_blocked_origin_is_neither_stored_nor_kept(db):
    kept = make_signed(KEY)
    await store.store_revisions(db, [kept], now=NOW)
    assert await block_origin(db, KEY.node_id, "spam", NOW) == 1
    result = await store.store_revisions(db, [make_signed(KEY)], now=NOW)
    assert result.accepted == [] and result.blocked == 1
    assert await store.list_annonces(db) == []


async def test_reconcile_items_are_current_revisions_in_order(db):
    first = make_signed(KEY, updated=NOW + 5)
    second = make_signed(OTHER)
    replaced = next_revision(KEY, first)
    await store.store_revisions(db, [first, second], now=NOW)
    await store.store_revisions(db, [replaced], now=NOW)
    items = await store.reconcile_items(db)
    assert items == sorted([(NOW, second.id), (NOW + 6, replaced.id)])


async def test_counts_by_origin_separate_live_and_withdrawn(db):
    live = make_signed(KEY)
    gone = make_signed(KEY)
    await store.store_revisions(
        db, [live, next_revision(KEY, gone, state=State.WITHDRAWN)], now=NOW
    )
    assert await store.counts_by_origin(db, now=NOW) == {KEY.node_id: {"live": 1, "withdrawn": 1}}
    expiry = max(live.annonce.expires, gone.annonce.expires)
    assert await store.counts_by_origin(db, now=expiry) == {}  # expired: waits for the purge


async def test_a_large_batch_is_stored_in_chunks(db):
    batch = [make_signed(KEY) for _ in range(1200)]
    result = await store.store_revisions(db, batch, now=NOW)
    assert len(result.accepted) == 1200
    assert len(await store.known_ids(db, [s.id for s in batch])) == 1200
