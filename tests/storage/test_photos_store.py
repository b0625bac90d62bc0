"""Photos in the database, on both backends: which annonce names which photo, the files
held, what is released, and what the sweep takes (storage/photos.py)."""

from __future__ import annotations

import hashlib

from sqlalchemy import inspect

from protocol.annonce import Photo, State
from protocol.identity import NodeKey
from storage import annonces as annonce_store
from storage import photos as store
from storage.moderation import hide_annonce
from storage.peers import block_origin
from storage.schema import metadata
from tests.factories import NOW, make_signed, next_revision

KEY = NodeKey.from_seed(b"\x21" * 32)
DAY = 86400


def photo(n: int, size: int = 1000) -> Photo:
    return Photo(hashlib.sha256(b"p%d" % n).digest(), size, 800, 600, f"photo {n}")


def held(n: int, *, own: bool = False, size: int = 1000, card: int = 100, at: int = NOW):
    return store.HeldFile(photo(n).sha256, own, size, card, at, at)


async def test_migrations_create_the_photo_tables_as_schema_py_says(db):
    def columns(sync_conn):
        inspector = inspect(sync_conn)
        return {name: {c["name"] for c in inspector.get_columns(name)}
                for name in ("annonce_photos", "photo_files", "annonces")}  # fmt: skip

    async with db.engine.connect() as conn:
        found = await conn.run_sync(columns)
    for name, names in found.items():
        assert names == {c.name for c in metadata.tables[name].columns}
    assert "photos" in found["annonces"]


async def test_a_stored_revision_keeps_its_photos_and_names_them(db):
    signed = make_signed(KEY, photos=(photo(1), photo(2)))
    await db.write(annonce_store.store_revisions, [signed], now=NOW)
    again = await db.read(annonce_store.get_annonce, KEY.node_id, signed.annonce.uid)
    assert again.annonce == signed.annonce and again.annonce.photos == (photo(1), photo(2))
    namings = await db.read(store.namings, photo(2).sha256, now=NOW)
    assert [(n.origin, n.size, n.visible) for n in namings] == [(KEY.node_id, 1000, True)]
    assert await db.read(store.namings, photo(3).sha256, now=NOW) == []


async def test_an_annonce_without_photos_reads_back_without(db):
    signed = make_signed(KEY)
    await db.write(annonce_store.store_revisions, [signed], now=NOW)
    assert (await db.read(annonce_store.get_by_id, signed.id)).annonce.photos == ()


async def test_a_new_revision_releases_the_photos_it_no_longer_names(db):
    seen = []
    db.on_change(lambda changes: seen.append(changes.keys(store.PHOTOS_RELEASED)))
    first = make_signed(KEY, photos=(photo(1), photo(2)))
    await db.write(annonce_store.store_revisions, [first], now=NOW)
    edited = next_revision(KEY, first, photos=(photo(2), photo(3)))
    await db.write(annonce_store.store_revisions, [edited], now=NOW)
    assert seen[-1] == {photo(1).sha256}
    tombstone = next_revision(KEY, edited, state=State.WITHDRAWN, title="", text="", photos=())
    await db.write(annonce_store.store_revisions, [tombstone], now=NOW)
    assert seen[-1] == {photo(2).sha256, photo(3).sha256}
    for n in (1, 2, 3):
        assert await db.read(store.namings, photo(n).sha256, now=NOW) == []


async def test_hidden_and_expired_annonces_name_their_photos_but_hide_them(db):
    signed = make_signed(KEY, photos=(photo(1),), expires=NOW + DAY)
    await db.write(annonce_store.store_revisions, [signed], now=NOW)
    assert (await db.read(store.namings, photo(1).sha256, now=NOW + DAY))[0].visible is False
    await db.write(hide_annonce, KEY.node_id, signed.annonce.uid, reason="x", now=NOW)
    assert (await db.read(store.namings, photo(1).sha256, now=NOW))[0].visible is False


async def test_a_blocked_origin_and_the_purge_take_the_namings_away(db):
    signed = make_signed(KEY, photos=(photo(1),), expires=NOW + DAY)
    other = make_signed(NodeKey.from_seed(b"\x22" * 32), photos=(photo(2),), expires=NOW + DAY)
    await db.write(annonce_store.store_revisions, [signed, other], now=NOW)
    await db.write(block_origin, KEY.node_id, "spam", NOW)
    assert await db.read(store.namings, photo(1).sha256, now=NOW) == []
    await db.write(annonce_store.purge_expired, NOW + DAY)
    assert await db.read(store.namings, photo(2).sha256, now=NOW) == []


async def test_the_sweep_forgets_unnamed_files_but_a_fresh_upload(db):
    await db.write(annonce_store.store_revisions, [make_signed(KEY, photos=(photo(1),))], now=NOW)
    for file in (held(1, own=True), held(2, own=True, at=NOW - 2 * DAY),
                 held(3, own=True, at=NOW - 3600), held(4)):  # fmt: skip
        assert await db.write(store.put_file, file)
    gone = await db.write(store.take_unneeded, now=NOW, upload_grace_s=DAY,
                          cache_max_bytes=10**9, cache_max_age_s=30 * DAY)  # fmt: skip
    assert set(gone) == {photo(2).sha256, photo(4).sha256}
    assert await db.read(store.all_files) == {photo(1).sha256, photo(3).sha256}


async def test_the_cache_evicts_the_least_recently_viewed_to_fit_and_the_stale(db):
    signed = make_signed(KEY, photos=tuple(photo(n) for n in range(1, 5)))
    await db.write(annonce_store.store_revisions, [signed], now=NOW)
    for n in range(1, 5):
        await db.write(store.put_file, held(n, at=NOW - 10 * DAY))
    await db.write(store.mark_viewed, photo(1).sha256, NOW)
    await db.write(store.mark_viewed, photo(3).sha256, NOW - DAY)
    await db.write(store.mark_viewed, photo(4).sha256, NOW - 2 * DAY)
    assert await db.read(store.cache_bytes) == 4 * 1100
    # photo 2 is stale (10 days, limit 5); then 4, the least recently viewed, to fit 2200.
    gone = await db.write(store.take_unneeded, now=NOW, upload_grace_s=DAY,
                          cache_max_bytes=2200, cache_max_age_s=5 * DAY)  # fmt: skip
    assert gone == [photo(2).sha256, photo(4).sha256]
    assert await db.read(store.cache_bytes) == 2200
    assert await db.read(store.figures) == {"own_files": 0, "own_bytes": 0,
                                            "cached_files": 2, "cached_bytes": 2200}  # fmt: skip


async def test_own_files_are_never_evicted_for_the_cache_bound(db):
    signed = make_signed(KEY, photos=(photo(1),))
    await db.write(annonce_store.store_revisions, [signed], now=NOW)
    await db.write(store.put_file, held(1, own=True, at=NOW - 400 * DAY))
    gone = await db.write(store.take_unneeded, now=NOW, upload_grace_s=DAY,
                          cache_max_bytes=0, cache_max_age_s=DAY)  # fmt: skip
    assert gone == []


async def test_forget_released_keeps_a_photo_another_annonce_still_names(db):
    one = make_signed(KEY, photos=(photo(1),))
    two = make_signed(KEY, photos=(photo(1),))
    await db.write(annonce_store.store_revisions, [one, two], now=NOW)
    await db.write(store.put_file, held(1, own=True))
    tombstone = next_revision(KEY, one, state=State.WITHDRAWN, title="", text="", photos=())
    await db.write(annonce_store.store_revisions, [tombstone], now=NOW)
    assert await db.write(store.forget_released, [photo(1).sha256]) == []
    tombstone = next_revision(KEY, two, state=State.WITHDRAWN, title="", text="", photos=())
    await db.write(annonce_store.store_revisions, [tombstone], now=NOW)
    assert await db.write(store.forget_released, [photo(1).sha256]) == [photo(1).sha256]


async def test_putting_a_file_twice_keeps_one_row_and_an_upload_makes_it_own(db):
    assert await db.write(store.put_file, held(1))
    assert not await db.write(store.put_file, held(1, own=True))
    assert (await db.read(store.get_file, photo(1).sha256)).own is True
