"""Short codes in the database: given with the annonce, gone with it, found by the index."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect, select, text

from protocol.annonce import Category, State
from protocol.identity import NodeKey
from protocol.short_code import short_code
from storage import annonces as annonce_store
from storage import peers, sheet
from storage.db import _alembic_config, open_database, sqlite_url
from storage.schema import metadata, short_codes
from tests.factories import NOW, make_signed, next_revision

KEY = NodeKey.from_seed(b"\x21" * 32)
OTHER = NodeKey.from_seed(b"\x22" * 32)


def _codes(conn):
    return {(r.origin, r.uid): r.code for r in conn.execute(select(short_codes))}


async def test_an_annonce_stored_gets_its_code_once_whatever_its_revisions(db):
    first = make_signed(KEY)
    await db.write(annonce_store.store_revisions, [first], now=NOW)
    second = next_revision(KEY, first, title="Aide au jardin, le dimanche")
    await db.write(annonce_store.store_revisions, [second], now=NOW)
    a = first.annonce
    assert await db.read(_codes) == {(a.origin, a.uid): short_code(a.origin, a.uid)}
    found = await db.read(sheet.by_code, short_code(a.origin, a.uid), limit=10)
    assert [s.annonce.title for s in found] == ["Aide au jardin, le dimanche"]


async def test_a_code_goes_with_its_annonce_purged_or_its_origin_blocked(db):
    old = make_signed(KEY, created=NOW - 40 * 86400, updated=NOW - 40 * 86400,
                      expires=NOW - 86400)  # fmt: skip
    live = make_signed(KEY)
    blocked = make_signed(OTHER)
    await db.write(annonce_store.store_revisions, [old, live, blocked], now=NOW - 50 * 86400)
    assert len(await db.read(_codes)) == 3
    await db.write(annonce_store.purge_expired, NOW)
    await db.write(peers.block_origin, OTHER.node_id, "spam", NOW)
    assert set(await db.read(_codes)) == {(KEY.node_id, live.annonce.uid)}
    gone = short_code(KEY.node_id, old.annonce.uid)
    assert await db.read(sheet.by_code, gone, limit=10) == []


async def test_a_shared_code_finds_every_annonce_bearing_it(db):
    """Two annonces whose codes collide: both are found (the row is forced to collide)."""
    one, two = make_signed(KEY), make_signed(KEY)
    await db.write(annonce_store.store_revisions, [one, two], now=NOW)

    def collide(conn):
        code = short_code(KEY.node_id, one.annonce.uid)
        conn.execute(short_codes.update().where(short_codes.c.uid == two.annonce.uid)
                     .values(code=code))  # fmt: skip
        return code

    code = await db.write(collide)
    found = await db.read(sheet.by_code, code, limit=10)
    assert {s.annonce.uid for s in found} == {one.annonce.uid, two.annonce.uid}


async def test_the_newest_open_annonces_of_the_communes_only(db):
    here = [make_signed(KEY, created=NOW - i, updated=NOW - i) for i in range(5)]
    elsewhere = make_signed(KEY, commune="47031")
    gone = make_signed(KEY, state=State.WITHDRAWN)
    past_sortie = make_signed(KEY, category=Category.SORTIE, sortie_at=NOW - 3600)
    await db.write(annonce_store.store_revisions, [*here, elsewhere, gone, past_sortie], now=NOW)
    newest = await db.read(sheet.newest_open, ["47001"], now=NOW, limit=3)
    assert [a.uid for a in newest] == [s.annonce.uid for s in here[:3]]
    both = await db.read(sheet.newest_open, ["47001", "47031"], now=NOW, limit=50)
    assert len(both) == 6
    assert await db.read(sheet.newest_open, [], now=NOW, limit=50) == []


async def test_the_migration_creates_the_table_as_schema_py_says(db):
    def described(sync_conn):
        inspector = inspect(sync_conn)
        return ({c["name"] for c in inspector.get_columns("short_codes")},
                {i["name"] for i in inspector.get_indexes("short_codes")},
                [f["referred_table"] for f in inspector.get_foreign_keys("short_codes")])

    async with db.engine.connect() as conn:
        columns, indexes, referred = await conn.run_sync(described)
    assert columns == {c.name for c in metadata.tables["short_codes"].columns}
    assert "ix_short_codes_code" in indexes and referred == ["annonces"]


async def test_a_lookup_by_code_uses_the_index(tmp_path):
    db = open_database(sqlite_url(tmp_path / "troc.db"))
    try:
        from storage.db import migrate

        await migrate(db)
        async with db.engine.connect() as conn:
            plan = (await conn.execute(text(
                "EXPLAIN QUERY PLAN SELECT origin FROM short_codes WHERE code = 'K7P3M'"
            ))).all()  # fmt: skip
        assert "ix_short_codes_code" in " ".join(str(row) for row in plan)
    finally:
        await db.close()


async def test_the_migration_gives_the_annonces_held_before_it_their_codes(tmp_path):
    db = open_database(sqlite_url(tmp_path / "troc.db"))
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(lambda c: command.upgrade(_alembic_config(c), "0013"))
        held = [make_signed(KEY) for _ in range(3)]

        def store_before_0014(conn):  # the ingest of 0013: no short_codes table yet
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            for signed in held:
                a = signed.annonce
                conn.execute(metadata.tables["annonces"].insert().values(
                    origin=a.origin, uid=a.uid, id=signed.id, rev=1, created=NOW, updated=NOW,
                    expires=NOW + 86400, state="open", kind="offer", category="service",
                    title="t", text="x", lang="fr", commune="47001", author_handle="marie",
                    author_name="Marie", envelope=signed.envelope, received_at=NOW,
                ))  # fmt: skip

        async with db.engine.begin() as conn:
            await conn.run_sync(store_before_0014)
        async with db.engine.begin() as conn:
            await conn.run_sync(lambda c: command.upgrade(_alembic_config(c), "0014"))
        codes = await db.read(_codes)
        assert codes == {(s.annonce.origin, s.annonce.uid):
                         short_code(s.annonce.origin, s.annonce.uid) for s in held}  # fmt: skip
    finally:
        await db.close()
