"""Benchmark photos on the network: what a photo costs the nodes that never view it,
and what its first and later views cost the node that does.

Run from the repository root: ``python bench/photos_network.py`` (the venv's
Python; ``--help`` lists the knobs). Three real nodes in this process (the
application of ``troc run`` on loopback HTTP, SQLite each, tests/node/harness.py),
peered A – B – C. A posts ``--annonces`` annonces with 4 photos each (phone-like
1600 × 1200 JPEG files made by node/imaging.py), then as many without photos;
gossip carries them to C through B.

What it measures, from the nodes' own counters (node/federation_state.py
``Traffic``: bodies and headers, every federation request and answer):

- **Federation bytes per annonce received by B**, with photos and without: the
  difference is what 4 photos cost a node that never views them (the 4 hashes,
  sizes and descriptions in the record; no photo byte). B must hold 0 photo files.
- **First view on C**: the time from a resident's GET of ``/photos/<hex>.jpg`` to
  the last byte (C fetches it from A, checks it, makes the card, stores both),
  and the bytes C received for it; **later views** from C's cache.
- **A flood of unknown hashes**: requests per second C answers with 404, and the
  requests C sends to other nodes meanwhile (must be 0).
- **Concurrent first views** of one photo: how many fetches they cause (must be 1).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PIL import Image  # noqa: E402

from node import annonces, imaging, photos  # noqa: E402
from node.annonces import Author, Draft  # noqa: E402
from node.keys import traffic_key  # noqa: E402
from protocol.annonce import Category, Kind, Photo  # noqa: E402
from protocol.identity import NodeKey  # noqa: E402
from storage import directory as directory_store  # noqa: E402
from storage import photos as photo_store  # noqa: E402
from storage.db import migrate, open_database, sqlite_url  # noqa: E402
from tests.node.harness import Clock, Node, eventually, peer  # noqa: E402
from tests.ports import free_port  # noqa: E402


def phone_photo() -> bytes:
    """A 4000 × 3000 JPEG with noise-like detail, as a phone would send."""
    small = Image.frombytes("RGB", (400, 300), os.urandom(400 * 300 * 3))
    image = small.resize((4000, 3000), Image.Resampling.BICUBIC)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


async def make_node(root: Path, index: int, name: str, clock: Clock) -> Node:
    data = root / f"node{index}"
    data.mkdir()
    db = open_database(sqlite_url(data / "troc.db"))
    await migrate(db)
    key = NodeKey.from_seed(bytes([0x60 + index]) * 32)
    return Node(name, key, db, free_port(), clock, data)


async def post(node: Node, kept: tuple[Photo, ...], n: int):
    draft = Draft(kind=Kind.OFFER, category=Category.OBJET, title=f"Vélo d'enfant {n}",
                  text="Un vélo de 16 pouces, à donner.", commune="47001", photos=kept)
    return await annonces.publish(node.app, Author("marie", "Marie Dupont"), draft)


def received(node: Node) -> int:
    return node.app[traffic_key].bytes_received


async def get(session: aiohttp.ClientSession, url: str) -> tuple[int, int]:
    async with session.get(url) as response:
        return response.status, len(await response.read())


async def run(args) -> None:
    clock = Clock(time.time())
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        a, b, c = [await make_node(root, i, n, clock) for i, n in enumerate("ABC")]
        await peer(a, b)
        await peer(b, c)
        for node in (a, b, c):
            await node.start()
        try:
            await eventually(lambda: c.db.read(directory_store.get_node, a.node_id), timeout=30)
            await eventually(lambda: a.db.read(directory_store.get_node, c.node_id), timeout=30)
            processed = [await asyncio.to_thread(imaging.process, phone_photo())
                         for i in range(4)]  # fmt: skip
            sizes = [len(p.full) for p in processed]
            # With photos: every annonce names the same 4 files, in turn in another order.
            before_b = received(b)
            last = None
            for n in range(args.annonces):
                kept = []
                for p in processed:
                    sha256 = await photos.keep_own(a.app, p)
                    kept.append(Photo(sha256, len(p.full), p.width, p.height,
                                      "Le vélo, vu de côté"))
                last = await post(a, tuple(kept), n)
                processed = processed[1:] + processed[:1]  # another order: another record
            await eventually(lambda: c.holds(last.id), timeout=60)
            with_photos = received(b) - before_b
            before_b = received(b)
            for n in range(args.annonces):
                last_plain = await post(a, (), n)
            await eventually(lambda: c.holds(last_plain.id), timeout=60)
            without = received(b) - before_b
            b_files = len(await b.db.read(photo_store.all_files))
            c_files_before = len(await c.db.read(photo_store.all_files))

            async with aiohttp.ClientSession() as session:
                sha256 = last.annonce.photos[0].sha256
                url = c.url + photos.photo_path(sha256)
                before_c = received(c)
                t0 = time.perf_counter()
                status, length = await get(session, url)
                first_ms = (time.perf_counter() - t0) * 1000
                fetched_bytes = received(c) - before_c
                assert status == 200 and length == last.annonce.photos[0].size
                later = []
                for _ in range(args.views):
                    t0 = time.perf_counter()
                    await get(session, url)
                    later.append((time.perf_counter() - t0) * 1000)

                state = c.app[photos.photos_key]
                asked = state.asked
                t0 = time.perf_counter()
                for _ in range(args.flood):
                    status, _ = await get(session, c.url + photos.photo_path(os.urandom(32)))
                    assert status == 404
                flood_rate = args.flood / (time.perf_counter() - t0)
                flood_asked = state.asked - asked

                other = last.annonce.photos[1].sha256
                fetched = state.fetched
                answers = await asyncio.gather(*(get(session, c.url + photos.photo_path(other))
                                                 for _ in range(args.concurrent)))  # fmt: skip
                assert {s for s, _ in answers} == {200}
                concurrent_fetches = state.fetched - fetched
        finally:
            for node in (a, b, c):
                await node.stop()
            for node in (a, b, c):
                await node.db.close()

    print(f"photos: {len(sizes)} per annonce, {statistics.mean(sizes) / 1e3:.0f} KB each "
          f"(imaging.process of 12 MP phone-like JPEG files)")
    print(f"B, relay, per annonce: {with_photos / args.annonces:.0f} B with 4 photos, "
          f"{without / args.annonces:.0f} B without "
          f"(+{(with_photos - without) / args.annonces:.0f} B: the record's 4 photo entries); "
          f"photo files on B: {b_files}; on C before any view: {c_files_before}")
    print(f"C, first view: {first_ms:.1f} ms, {fetched_bytes / 1e3:.1f} KB received "
          f"for a {last.annonce.photos[0].size / 1e3:.1f} KB photo")
    print(f"C, later views (cache): median {statistics.median(later):.2f} ms over {args.views}")
    print(f"C, unknown hashes: {flood_rate:.0f} requests/s answered 404, "
          f"{flood_asked} requests sent to other nodes")
    print(f"C, {args.concurrent} concurrent first views of one photo: "
          f"{concurrent_fetches} fetch")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--annonces", type=int, default=50)
    parser.add_argument("--views", type=int, default=200)
    parser.add_argument("--flood", type=int, default=2000)
    parser.add_argument("--concurrent", type=int, default=20)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
