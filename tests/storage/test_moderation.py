"""Hiding an annonce, on SQLite and PostgreSQL: what it holds across revisions,
and what it keeps from peers (fetch, the outbox) and residents (search)."""

from __future__ import annotations

from protocol.annonce import State
from protocol.identity import NodeKey
from storage import annonces as store
from storage import moderation, outbox, search
from storage import peers as peer_store
from storage import reports as report_store
from storage.search import Query
from tests.factories import NOW, make_signed, next_revision

KEY = NodeKey.from_seed(b"\x21" * 32)
PEER = NodeKey.from_seed(b"\x22" * 32).node_id


async def _found(db, text: str) -> list[str]:
    page = await db.read(search.run_search, Query(text=text), now=NOW, communes={})
    return [hit.title for hit in page.hits]


async def test_hiding_keeps_the_reason_and_time_and_unhiding_clears_them(db):
    signed = make_signed(KEY)
    await db.write(store.store_revisions, [signed], now=NOW)
    a = signed.annonce
    hidden = await db.write(moderation.hide_annonce, a.origin, a.uid, reason="arnaque", now=NOW + 5)
    assert (hidden.hidden, hidden.hidden_reason, hidden.hidden_at) == (True, "arnaque", NOW + 5)
    assert hidden.id == signed.id
    shown = await db.write(moderation.unhide_annonce, a.origin, a.uid)
    assert (shown.hidden, shown.hidden_reason, shown.hidden_at) == (False, None, None)


async def test_an_annonce_not_held_cannot_be_hidden_or_shown(db):
    a = make_signed(KEY).annonce
    assert await db.write(moderation.hide_annonce, a.origin, a.uid, reason="", now=NOW) is None
    assert await db.write(moderation.unhide_annonce, a.origin, a.uid) is None


async def test_a_new_revision_of_a_hidden_annonce_stays_hidden(db):
    first = make_signed(KEY, title="Vélo à donner")
    await db.write(store.store_revisions, [first], now=NOW)
    a = first.annonce
    await db.write(moderation.hide_annonce, a.origin, a.uid, reason="doublon", now=NOW)
    second = next_revision(KEY, first, title="Vélo à donner (révisé)")
    assert [s.id for s in (await db.write(store.store_revisions, [second], now=NOW)).accepted] == [
        second.id
    ]
    held = await db.read(store.get_annonce, a.origin, a.uid)
    assert held.id == second.id and held.annonce.title == "Vélo à donner (révisé)"
    assert (held.hidden, held.hidden_reason, held.hidden_at) == (True, "doublon", NOW)
    assert await _found(db, "vélo") == []
    await db.write(moderation.unhide_annonce, a.origin, a.uid)
    assert await _found(db, "vélo") == ["Vélo à donner (révisé)"]


async def test_a_hidden_annonce_is_not_served_but_its_tombstone_is(db):
    live = make_signed(KEY)
    await db.write(store.store_revisions, [live], now=NOW)
    a = live.annonce
    await db.write(moderation.hide_annonce, a.origin, a.uid, reason="", now=NOW)
    assert await db.read(store.envelopes_by_id, [live.id]) == {}
    assert await db.read(store.known_ids, [live.id]) == {live.id}  # held all the same
    assert live.id in {item_id for _, item_id in await db.read(store.reconcile_items)}
    tomb = next_revision(KEY, live, state=State.WITHDRAWN, title="", text="")
    await db.write(store.store_revisions, [tomb], now=NOW)
    held = await db.read(store.get_annonce, a.origin, a.uid)
    assert held.hidden and held.annonce.is_tombstone
    assert await db.read(store.envelopes_by_id, [tomb.id]) == {tomb.id: tomb.envelope}


async def test_the_outbox_drops_a_hidden_annonce_unsent(db):
    await db.write(peer_store.add_peer, PEER, "http://127.0.0.1:9000", "p", NOW)
    hidden, kept = make_signed(KEY), make_signed(KEY)
    await db.write(store.store_revisions, [hidden, kept], now=NOW)
    entries = [(s.id, s.annonce.origin) for s in (hidden, kept)]
    await db.write(outbox.enqueue_annonces, entries, source=None, now=NOW)
    a = hidden.annonce
    await db.write(moderation.hide_annonce, a.origin, a.uid, reason="", now=NOW)
    assert await db.write(outbox.take_annonces, PEER, 10) == [kept.id]
    assert await db.read(outbox.pending_counts) == {PEER: 1}
    await db.write(outbox.enqueue_annonces, entries[:1], source=None, now=NOW)
    assert await db.write(outbox.drop_dead) == 1
    await db.write(moderation.unhide_annonce, a.origin, a.uid)
    await db.write(outbox.enqueue_annonces, entries[:1], source=None, now=NOW)
    assert sorted(await db.write(outbox.take_annonces, PEER, 10)) == sorted([kept.id, hidden.id])


async def test_open_reports_are_counted_per_annonce(db):
    reported, other = make_signed(KEY), make_signed(KEY)
    await db.write(store.store_revisions, [reported, other], now=NOW)
    a = reported.annonce
    for reason in ("arnaque", "hors-sujet"):
        await db.write(report_store.add_report, origin=a.origin, uid=a.uid, title=a.title,
                                   member_id=None, reason=reason, details="", now=NOW)  # fmt: skip
    assert await db.read(moderation.open_reports, a.origin, a.uid) == 2
    assert await db.read(moderation.open_reports, other.annonce.origin, other.annonce.uid) == 0
