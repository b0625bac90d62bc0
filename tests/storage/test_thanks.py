"""Exchanges and mercis as stored, on both backends: once each, counts, what is shown when."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from storage import residents, successions
from storage import thanks as store
from storage.errors import Conflict
from storage.schema import metadata
from storage.thanks import OFFER, REQUEST, Side
from tests.factories import NOW

HERE, THERE = b"\x01" * 32, b"\x02" * 32
REVEAL = 14 * 86400


async def member(db, handle: str):
    return await db.write(residents.create_member, handle=handle, display_name=handle.title(),
                          password_hash="-", state="active", now=NOW)  # fmt: skip


async def exchange(db, n: int, kind: str, author: Side, other: Side, *, confirmed=True):
    return await db.write(store.add_exchange, key=bytes([n]) * 16, annonce_origin=author.node,
                          annonce_uid=bytes([n]) * 16, title=f"Annonce {n}", kind=kind,
                          author=author, other=other, now=NOW + n, confirmed=confirmed)  # fmt: skip


async def test_the_migrations_create_the_thanks_tables_as_schema_py_says(db):
    def columns(sync_conn):
        inspector = inspect(sync_conn)
        return {name: {c["name"] for c in inspector.get_columns(name)}
                for name in ("thanks_exchanges", "thanks_mercis")}  # fmt: skip

    async with db.engine.connect() as conn:
        found = await conn.run_sync(columns)
    for name, names in found.items():
        assert names == {c.name for c in metadata.tables[name].columns}


async def test_one_exchange_per_annonce_and_per_conversation(db):
    marie = await member(db, "marie")
    author, paul = Side(HERE, "marie", "Marie", marie.id), Side(THERE, "paul", "Paul")
    first = await exchange(db, 1, REQUEST, author, paul)
    assert (first.key, first.author, first.other, first.confirmed) == (
        b"\x01" * 16, author, paul, True)  # fmt: skip
    with pytest.raises(Conflict):  # the same annonce, another conversation
        await db.write(store.add_exchange, key=b"\x09" * 16, annonce_origin=HERE,
                       annonce_uid=b"\x01" * 16, title="x", kind=REQUEST, author=author,
                       other=Side(THERE, "eve", "Eve"), now=NOW, confirmed=True)  # fmt: skip
    with pytest.raises(Conflict):  # the same conversation, another annonce
        await db.write(store.add_exchange, key=b"\x01" * 16, annonce_origin=HERE,
                       annonce_uid=b"\x08" * 16, title="x", kind=REQUEST, author=author,
                       other=paul, now=NOW, confirmed=True)  # fmt: skip
    assert await db.read(store.exchange_by_key, b"\x01" * 16) == first
    assert await db.read(store.exchanges_of_member, marie.id) == [first]


async def test_one_merci_per_side_and_the_first_stands(db):
    marie = await member(db, "marie")
    marie_here, paul = Side(HERE, "marie", "Marie", marie.id), Side(THERE, "paul", "Paul")
    x = await exchange(db, 1, REQUEST, marie_here, paul)
    mine = await db.write(store.add_merci, x.id, from_author=True, text="Merci", now=NOW,
                          delivery=store.PENDING)  # fmt: skip
    assert mine is not None and mine.delivery == store.PENDING
    assert await db.write(store.add_merci, x.id, from_author=True, text="Encore", now=NOW) is None
    theirs = await db.write(store.add_merci, x.id, from_author=False, text="De rien", now=NOW + 5,
                            statement=b"s", signature=b"\x00" * 64)  # fmt: skip
    await db.write(store.set_delivery_of, [x.key], store.DELIVERED)
    held = await db.read(store.mercis_of, x.id)
    assert [(m.text, m.delivery) for m in held] == [("Merci", store.DELIVERED), ("De rien", None)]
    assert held[1] == theirs


async def test_counts_say_whom_one_helped_and_how_often_one_was_helped(db):
    marie, paul = await member(db, "marie"), await member(db, "paul")
    m, p = Side(HERE, "marie", "Marie", marie.id), Side(HERE, "paul", "Paul", paul.id)
    far = Side(THERE, "lea", "Léa")
    await exchange(db, 1, REQUEST, m, p)  # Paul helped Marie
    await exchange(db, 2, OFFER, m, p)  # Marie helped Paul
    await exchange(db, 3, OFFER, m, far)  # Marie helped Léa
    await exchange(db, 4, REQUEST, far, m)  # Marie helped Léa again: one neighbour
    await exchange(db, 5, REQUEST, m, far, confirmed=False)  # not held by Léa's node yet
    assert await db.read(store.counts, HERE, "marie") == store.Counts(helped=2, was_helped=1)
    assert await db.read(store.counts, HERE, "paul") == store.Counts(helped=1, was_helped=1)
    assert await db.read(store.counts, THERE, "lea") == store.Counts(helped=0, was_helped=2)
    assert await db.read(store.counts, THERE, "marie") == store.Counts(0, 0)  # another node's
    assert await db.read(store.known_name, THERE, "lea") == "Léa"
    assert await db.read(store.known_name, THERE, "nobody") is None


async def test_a_merci_is_shown_when_both_wrote_or_the_delay_passed_newest_first(db):
    marie = await member(db, "marie")
    m = Side(HERE, "marie", "Marie", marie.id)
    paul, lea = Side(THERE, "paul", "Paul"), Side(THERE, "lea", "Léa")
    one = await exchange(db, 1, REQUEST, m, paul)
    two = await exchange(db, 2, REQUEST, m, lea)
    await db.write(store.add_merci, one.id, from_author=False, text="Paul à Marie", now=NOW)
    await db.write(store.add_merci, two.id, from_author=False, text="Léa à Marie", now=NOW + 10)

    def shown(at):
        return db.read(store.shown_to, HERE, "marie", now=at, reveal_s=REVEAL, limit=10)

    assert await shown(NOW + REVEAL - 1) == []
    assert [s.text for s in await shown(NOW + REVEAL)] == ["Paul à Marie"]
    await db.write(store.add_merci, two.id, from_author=True, text="Marie à Léa", now=NOW + 20)
    assert [(s.text, s.from_name) for s in await shown(NOW + 30)] == [("Léa à Marie", "Léa")]
    assert [s.text for s in await shown(NOW + REVEAL + 30)] == ["Léa à Marie", "Paul à Marie"]
    to_lea = await db.read(store.shown_to, THERE, "lea", now=NOW + 30, reveal_s=REVEAL, limit=10)
    assert [s.text for s in to_lea] == ["Marie à Léa"]
    assert len(await db.read(store.shown_to, HERE, "marie", now=NOW + REVEAL + 30,
                             reveal_s=REVEAL, limit=1)) == 1  # fmt: skip


async def test_exchanges_follow_a_node_whose_key_changed(db):
    marie = await member(db, "marie")
    new = b"\x03" * 32
    marie_here, paul = Side(HERE, "marie", "Marie", marie.id), Side(THERE, "paul", "Paul")
    await exchange(db, 1, OFFER, marie_here, paul)
    await db.write(successions.follow, THERE, new, NOW)
    assert await db.read(store.counts, new, "paul") == store.Counts(helped=0, was_helped=1)
    assert await db.read(store.counts, THERE, "paul") == store.Counts(0, 0)
    assert (await db.read(store.exchange_by_key, b"\x01" * 16)).other.node == new
