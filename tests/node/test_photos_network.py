"""Photos between real nodes on loopback: carried only where they are looked at.

A photo uploaded on A (keep_own, then publish) reaches C, two hops away, only
when a resident of C looks at it: C fetches it from the origin, checks it
against the signed record, makes its card and caches it. B, which only relays
the annonce, never receives a byte of it.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
from dataclasses import dataclass

import aiohttp
import msgpack
import pytest
from PIL import Image

from node import annonces, peering, photo_files, photos
from node.annonces import Author, Draft
from node.sync import purge_once
from protocol import federation as messages
from protocol.annonce import Category, Kind, Photo, encode_body
from protocol.envelope import ANNONCE_DOMAIN, pack_envelope
from storage import directory as directory_store
from storage import photos as photo_store
from storage.moderation import hide_annonce
from tests.factories import NOW as NOW_OF_TESTS
from tests.factories import make_annonce
from tests.node.harness import (
    Clock,
    eventually,
    make_nodes,
    peer,
    served_admin,
    signed_call,
)


@dataclass(frozen=True)
class Upload:
    """What node/imaging.py hands node/photos.keep_own, made here from a plain JPEG."""

    full: bytes
    width: int
    height: int
    card: bytes
    card_width: int
    card_height: int


def jpeg(width: int, height: int, colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "JPEG", quality=80)
    return out.getvalue()


def upload(n: int = 1) -> Upload:
    colour = (40 * n % 256, 120, 200)
    return Upload(jpeg(640, 480, colour), 640, 480, jpeg(480, 360, colour), 480, 360)


async def post_with_photos(node, *uploads: Upload, alt: str = "La haie, côté rue"):
    kept = []
    for item in uploads:
        sha256 = await photos.keep_own(node.app, item)
        kept.append(Photo(sha256, len(item.full), item.width, item.height, alt))
    draft = Draft(kind=Kind.OFFER, category=Category.SERVICE, title="Aide au jardin",
                  text="Je peux tailler votre haie.", commune="47001",
                  photos=tuple(kept))  # fmt: skip
    return await annonces.publish(node.app, Author("marie", "Marie Dupont"), draft)


async def get(node, path: str) -> tuple[int, bytes, dict]:
    async with aiohttp.ClientSession() as session, session.get(node.url + path) as response:
        return response.status, await response.read(), dict(response.headers)


async def files_held(node) -> set[bytes]:
    return await node.db.read(photo_store.all_files)


@pytest.fixture
async def three(db, spare_db, tmp_path):
    nodes = await make_nodes(db, spare_db, tmp_path, ["A", "B", "C"], Clock())
    return nodes


async def start(*nodes):
    a, b, c = nodes
    await peer(a, b)
    await peer(b, c)
    for node in nodes:
        await node.start()
    # C asks A, which is not its peer, as a node of the directory (and A takes it).
    for one, other in ((c, a), (a, c)):
        await eventually(lambda one=one, other=other: one.db.read(directory_store.get_node,
                                                                  other.node_id))  # fmt: skip


async def stop(*nodes):
    for node in nodes:
        await node.stop()


async def test_a_photo_posted_on_a_is_shown_on_c_byte_identical_and_b_holds_none(three):
    a, b, c = three
    await start(a, b, c)
    try:
        item = upload()
        signed = await post_with_photos(a, item)
        sha256 = signed.annonce.photos[0].sha256
        assert sha256 == hashlib.sha256(item.full).digest()
        await eventually(lambda: c.holds(signed.id))
        held_c = await c.db.read(photo_store.get_file, sha256)
        assert held_c is None  # nothing travels before a view
        status, body, headers = await get(c, photos.photo_path(sha256))
        assert status == 200 and hashlib.sha256(body).digest() == sha256
        assert headers["Content-Type"] == "image/jpeg"
        assert headers["Cache-Control"] == "public, max-age=31536000, immutable"
        status, card, _ = await get(c, photos.photo_path(sha256, card=True))
        assert status == 200 and Image.open(io.BytesIO(card)).format == "JPEG"
        assert max(Image.open(io.BytesIO(card)).size) <= 480
        # Again, from C's cache: on disk, and the database says cached, not own.
        status, again, _ = await get(c, photos.photo_path(sha256))
        assert (status, again) == (200, body)
        assert (await c.db.read(photo_store.get_file, sha256)).own is False
        assert photo_files.file_path(c.data_dir, sha256).read_bytes() == item.full
        assert c.app[photos.photos_key].fetched == 1
        # B relayed the annonce and never received the photo.
        assert await files_held(b) == set()
        assert b.app[photos.photos_key].fetched == 0
        assert not photo_files.photos_root(b.data_dir).exists()
        # A serves its own.
        status, own, _ = await get(a, photos.photo_path(sha256))
        assert (status, own) == (200, item.full)
    finally:
        await stop(a, b, c)


async def test_concurrent_first_views_fetch_once(three):
    a, b, c = three
    await start(a, b, c)
    try:
        signed = await post_with_photos(a, upload())
        sha256 = signed.annonce.photos[0].sha256
        await eventually(lambda: c.holds(signed.id))
        answers = await asyncio.gather(*(get(c, photos.photo_path(sha256, card=n % 2 == 0))
                                         for n in range(8)))  # fmt: skip
        assert {status for status, _, _ in answers} == {200}
        assert c.app[photos.photos_key].fetched == 1
    finally:
        await stop(a, b, c)


async def test_a_withdrawn_annonce_takes_its_photos_away_from_a_b_and_c(three):
    a, b, c = three
    await start(a, b, c)
    try:
        signed = await post_with_photos(a, upload(1), upload(2))
        hashes = [p.sha256 for p in signed.annonce.photos]
        await eventually(lambda: c.holds(signed.id))
        for sha256 in hashes:
            assert (await get(c, photos.photo_path(sha256)))[0] == 200
        assert await files_held(c) == set(hashes) == await files_held(a)
        tombstone = await annonces.withdraw(a.app, signed.annonce.uid)
        assert tombstone.annonce.photos == ()
        await eventually(lambda: c.holds(tombstone.id))
        for node in (a, b, c):
            await photos.settled(node.app)
            assert await files_held(node) == set()
            for sha256 in hashes:
                assert (await get(node, photos.photo_path(sha256)))[0] == 404
                assert (await get(node, photos.photo_path(sha256, card=True)))[0] == 404
                assert not photo_files.file_path(node.data_dir, sha256).exists()
                assert not photo_files.file_path(node.data_dir, sha256, card=True).exists()
    finally:
        await stop(a, b, c)


@pytest.mark.parametrize("swap", ["other-bytes", "longer", "shorter"])
async def test_a_node_serving_other_bytes_for_the_hash_is_refused_and_nothing_kept(three, swap):
    a, b, c = three
    await start(a, b, c)
    try:
        item = upload()
        signed = await post_with_photos(a, item)
        sha256 = signed.annonce.photos[0].sha256
        await eventually(lambda: c.holds(signed.id))
        other = {"other-bytes": bytes(reversed(item.full)), "longer": item.full + b"\0",
                 "shorter": item.full[:-1]}[swap]  # fmt: skip
        photo_files.write_atomically(photo_files.file_path(a.data_dir, sha256), other)
        assert (await get(c, photos.photo_path(sha256)))[0] == 404
        assert await files_held(c) == set()
        assert not photo_files.file_path(c.data_dir, sha256).exists()
        assert c.app[photos.photos_key].fetched == 0
        if swap == "other-bytes":  # the length is right: the hash is what refuses it
            assert c.app[photos.photos_key].refused == 1
        # Not asked again for a while, however many views; then asked again.
        asked = c.app[photos.photos_key].asked
        assert (await get(c, photos.photo_path(sha256)))[0] == 404
        assert c.app[photos.photos_key].asked == asked
        c.clock.advance(photos.FETCH_RETRY_S + 1)
        photo_files.write_atomically(photo_files.file_path(a.data_dir, sha256), item.full)
        assert (await get(c, photos.photo_path(sha256)))[0] == 200
        assert c.app[photos.photos_key].asked == asked + 1
    finally:
        await stop(a, b, c)


async def test_the_cache_bound_evicts_and_own_photos_stay(db, spare_db, tmp_path):
    a, b, c = await make_nodes(db, spare_db, tmp_path, ["A", "B", "C"], Clock())
    c.options = {"photo_cache_mb": 0}
    await start(a, b, c)
    try:
        signed = await post_with_photos(a, upload(1), upload(2))
        await eventually(lambda: c.holds(signed.id))
        for p in signed.annonce.photos:
            status, body, _ = await get(c, photos.photo_path(p.sha256))
            assert status == 200 and hashlib.sha256(body).digest() == p.sha256
        await photos.settled(c.app)
        assert await files_held(c) == set()  # nothing kept beyond the view
        assert c.app[photos.photos_key].fetched == 2
        assert (await get(c, photos.photo_path(signed.annonce.photos[0].sha256)))[0] == 200
        assert c.app[photos.photos_key].fetched == 3
        await photos.sweep(a.app)
        assert await files_held(a) == {p.sha256 for p in signed.annonce.photos}
    finally:
        await stop(a, b, c)


async def test_hiding_an_annonce_hides_its_photos_here_only(three):
    a, b, c = three
    await start(a, b, c)
    try:
        signed = await post_with_photos(a, upload())
        sha256 = signed.annonce.photos[0].sha256
        await eventually(lambda: c.holds(signed.id))
        assert (await get(c, photos.photo_path(sha256)))[0] == 200
        await c.db.write(hide_annonce, a.node_id, signed.annonce.uid, reason="x", now=0)
        assert (await get(c, photos.photo_path(sha256)))[0] == 404
        assert (await get(c, photos.photo_path(sha256, card=True)))[0] == 404
        assert (await get(a, photos.photo_path(sha256)))[0] == 200
        # Hidden on the origin: not served to residents nor to other nodes.
        await a.db.write(hide_annonce, a.node_id, signed.annonce.uid, reason="x", now=0)
        assert (await get(a, photos.photo_path(sha256)))[0] == 404
        answer = await signed_call(c.key, a, f"{photos.PHOTO_FETCH_PATH}?sha256={sha256.hex()}")
        assert answer.status == 404
    finally:
        await stop(a, b, c)


async def test_a_flood_of_unknown_hashes_is_404_without_the_network(three):
    a, b, c = three
    await start(a, b, c)
    try:
        await post_with_photos(a, upload())
        names = [os.urandom(32).hex() + ".jpg" for _ in range(50)]
        names += ["x.jpg", "00.jpg", "A" * 64 + ".jpg", "0" * 64 + ".png", "0" * 64,
                  "0" * 64 + "-carte-carte.jpg", "../" + "0" * 64 + ".jpg"]  # fmt: skip
        for name in names:
            assert (await get(c, photos.URL_PREFIX + name))[0] == 404
        assert c.app[photos.photos_key].asked == 0
    finally:
        await stop(a, b, c)


async def test_an_upload_is_shown_before_publication_and_purged_after_a_day(db, spare_db,
                                                                           tmp_path):  # fmt: skip
    clock = Clock()
    (a,) = await make_nodes(db, spare_db, tmp_path, ["A"], clock)
    await a.start(background_tasks=False)
    try:
        item = upload()
        sha256 = await photos.keep_own(a.app, item)
        assert (await get(a, photos.photo_path(sha256, card=True)))[1] == item.card
        clock.advance(photos.UPLOAD_GRACE_S + 1)
        assert (await get(a, photos.photo_path(sha256)))[0] == 404
        await photos.sweep(a.app)
        assert await files_held(a) == set()
        assert not photo_files.file_path(a.data_dir, sha256).exists()
    finally:
        await a.stop()


async def test_the_federation_photo_endpoint_refuses_what_is_malformed(three):
    a, b, c = three
    await start(a, b, c)
    try:
        signed = await post_with_photos(a, upload())
        hexed = signed.annonce.photos[0].sha256.hex()
        ok = await signed_call(b.key, a, f"{photos.PHOTO_FETCH_PATH}?sha256={hexed}")
        assert ok.status == 200 and hashlib.sha256(ok.body).hexdigest() == hexed
        for query in ("", "?sha256=" + hexed[:-2], "?sha256=" + hexed.upper(),
                      f"?sha256={hexed}&sha256={hexed}", f"?sha256={hexed}&x=1",
                      "?sha256=" + "zz" * 32):  # fmt: skip
            answer = await signed_call(b.key, a, photos.PHOTO_FETCH_PATH + query)
            assert answer.status == 400, query
        unknown = await signed_call(b.key, a, f"{photos.PHOTO_FETCH_PATH}?sha256={'0' * 64}")
        assert unknown.status == 404
        async with aiohttp.ClientSession() as session:  # unsigned
            async with session.get(f"{a.url}{photos.PHOTO_FETCH_PATH}?sha256={hexed}") as r:
                assert r.status == 401
    finally:
        await stop(a, b, c)


async def test_an_expired_annonce_s_photos_go_with_the_purge(db, spare_db, tmp_path):
    clock = Clock()
    a, b, c = await make_nodes(db, spare_db, tmp_path, ["A", "B", "C"], clock)
    await start(a, b, c)
    try:
        short = await post_with_photos(a, upload(1))
        await eventually(lambda: c.holds(short.id))
        assert (await get(c, photos.photo_path(short.annonce.photos[0].sha256)))[0] == 200
        clock.advance(short.annonce.expires - clock.now + 1)
        for node in (a, c):
            await purge_once(node.app)
            await photos.settled(node.app)
            assert await files_held(node) == set()
            assert not photo_files.file_path(node.data_dir, short.annonce.photos[0].sha256).exists()
    finally:
        await stop(a, b, c)


async def test_blocking_an_origin_hides_and_deletes_its_photos_at_once(three):
    a, b, c = three
    await start(a, b, c)
    try:
        signed = await post_with_photos(a, upload(2))
        sha256 = signed.annonce.photos[0].sha256
        await eventually(lambda: c.holds(signed.id))
        assert (await get(c, photos.photo_path(sha256)))[0] == 200
        await peering.block_origin(c.app, a.node_id, "spam")
        assert (await get(c, photos.photo_path(sha256)))[0] == 404
        await photos.settled(c.app)
        assert await files_held(c) == set()
        assert not photo_files.file_path(c.data_dir, sha256).exists()
        assert (await get(a, photos.photo_path(sha256)))[0] == 200
    finally:
        await stop(a, b, c)


def _pushed_with_photos(key, photos_value) -> bytes:
    """An envelope signed by ``key`` whose body's photos are ``photos_value`` as given."""
    fields = msgpack.unpackb(encode_body(make_annonce(key, now=NOW_OF_TESTS)), raw=False)
    fields["photos"] = photos_value
    body = msgpack.packb(fields, use_bin_type=True)
    return pack_envelope(key.node_id, body, key.sign(ANNONCE_DOMAIN + body))


def _photo_map(n: int, **changes) -> dict:
    entry = {"sha256": hashlib.sha256(b"%d" % n).digest(), "size": 1000, "width": 800,
             "height": 600, "alt": ""}  # fmt: skip
    return {**entry, **changes}


@pytest.mark.parametrize(("value", "code"), [
    ([_photo_map(n) for n in range(5)], "too-large"),
    ([_photo_map(1, sha256=b"\0" * 31)], "invalid"),
    ([_photo_map(1, size=10**7)], "invalid"),
    ([_photo_map(1, width=0)], "invalid"),
    ([_photo_map(1, alt="x" * 201)], "too-large"),
    ([_photo_map(1), _photo_map(1)], "invalid"),
    ([], "malformed"),
    ([{"sha256": b"\0" * 32}], "malformed"),
])
async def test_a_peer_pushing_malformed_photo_fields_is_refused_item_by_item(three, value, code):
    a, b, c = three
    await start(a, b, c)
    try:
        envelope = _pushed_with_photos(b.key, value)
        answer = await signed_call(b.key, c, messages.PUSH_PATH, messages.encode_push([envelope]))
        assert answer.status >= 400  # nothing of the push was usable: a problem, each item told
        refused = json.loads(answer.body)["refused"]
        assert [(r["code"], r["field"]) for r in refused] == [(code, "photos")]
        assert await c.current_ids() == set()
    finally:
        await stop(a, b, c)


async def test_a_photo_that_matches_its_hash_but_is_no_image_is_not_kept(three):
    a, b, c = three
    await start(a, b, c)
    try:
        garbage = Upload(b"not a photo at all, though signed", 640, 480, b"nor a card", 480, 360)
        signed = await post_with_photos(a, garbage)
        sha256 = signed.annonce.photos[0].sha256
        await eventually(lambda: c.holds(signed.id))
        assert (await get(c, photos.photo_path(sha256)))[0] == 404
        assert await files_held(c) == set()
        assert c.app[photos.photos_key].fetched == 1  # fetched, checked, then not kept
    finally:
        await stop(a, b, c)


async def test_the_admin_status_counts_photos_held_and_fetched(three):
    a, b, c = three
    await start(a, b, c)
    try:
        item = upload()
        signed = await post_with_photos(a, item)
        await eventually(lambda: c.holds(signed.id))
        assert (await get(c, photos.photo_path(signed.annonce.photos[0].sha256)))[0] == 200
        async with served_admin(a) as admin_a, served_admin(c) as admin_c:
            _, on_a = await admin_a.call("GET", "/v1/status")
            _, on_c = await admin_c.call("GET", "/v1/status")
        held = len(item.full) + len(item.card)
        assert (on_a["photos"]["own_files"], on_a["photos"]["own_bytes"]) == (1, held)
        assert on_c["photos"]["cached_files"] == 1 and on_c["photos"]["own_files"] == 0
        assert (on_c["photos"]["fetched"], on_c["photos"]["fetched_bytes"]) == (1, len(item.full))
        assert on_c["photos"]["cache_limit_bytes"] == 500 * 1024 * 1024
    finally:
        await stop(a, b, c)
