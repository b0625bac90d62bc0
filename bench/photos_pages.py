"""Photos pages benchmark: what a phone fetches for a page of 20 cards with photos.

Run from anywhere, without installing the project (Chromium at /usr/bin/chromium)::

    python bench/photos_pages.py [--width 360] [--height 640] [--photos DIR]

It starts the node's real application on loopback (SQLite in a temporary
directory), publishes 20 annonces of this node, each with one photo made by
node.imaging from a 2000 × 1500 phone-like JPEG (bench/photos.py's pictures:
gradients, shapes, sensor noise and fine texture; ``--photos DIR``: the JPEG
files of a folder instead), then opens the home page (the 20 newest cards) in
Debian's Chromium at ``--width`` × ``--height`` CSS px, device scale 2 (a
cheap phone's screen), without scrolling, and counts what Chromium fetched
until the network was idle:

- the HTML, gzipped as the node sends it to a browser that asks;
- the stylesheet and the favicon (cached after the first page: counted anyway);
- the card images Chromium fetched: those on the first screen, and those its
  ``loading="lazy"`` distance threshold starts early (up to 1,250 px below
  the screen on a fast connection, 2,500 px on a slow one).

Bytes are Chromium's own counts (``request.sizes()``: response headers and
body as received). The budget is 150 KB (150,000 bytes) on the wire. It then
scrolls to the end of the page and prints what all 20 cards cost, for
comparison, and the annonce page of one of them (its photo through
``srcset``/``sizes``).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import socket
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aiohttp import ClientSession, web  # noqa: E402

from bench.photos import as_jpeg, phone_picture  # noqa: E402
from node import annonces, imaging, photos  # noqa: E402
from node.app import create_app  # noqa: E402
from node.settings import Settings  # noqa: E402
from protocol.annonce import Category, Kind, Photo  # noqa: E402
from protocol.identity import NodeKey  # noqa: E402
from storage.db import migrate, open_database, sqlite_url  # noqa: E402
from storage.nodes import claim_database  # noqa: E402

BUDGET_BYTES = 150_000
CARDS = 20
NODE_KEY = NodeKey.from_seed(b"bench-photos-pages-node-seed-32b")
CHROMIUM = "/usr/bin/chromium"
TITLES = ("Vélo d'enfant", "Table de jardin", "Perceuse à prêter", "Cours de tricot",
          "Plants de tomates", "Poussette", "Aide pour un déménagement", "Livres pour enfants",
          "Lampe de bureau", "Sortie au marché")  # fmt: skip


def pictures(folder: Path | None) -> list[bytes]:
    if folder is not None:
        files = sorted(folder.glob("*.jp*g"))[:CARDS]
        if not files:
            raise SystemExit(f"no JPEG file in {folder}")
        return [path.read_bytes() for path in files]
    return [as_jpeg(phone_picture(seed, (2000, 1500))) for seed in range(CARDS)]


async def fill(app: web.Application, sent: list[bytes]) -> list[str]:
    refs = []
    for index in range(CARDS):
        processed = await asyncio.to_thread(imaging.process, sent[index % len(sent)])
        sha256 = await photos.keep_own(app, processed)
        photo = Photo(sha256, len(processed.full), processed.width, processed.height,
                      f"Photo : {TITLES[index % len(TITLES)]}")  # fmt: skip
        draft = annonces.Draft(kind=Kind.OFFER, category=Category.OBJET,
                               title=f"{TITLES[index % len(TITLES)]} ({index + 1})",
                               text="À venir chercher près de la mairie, en semaine après 17 h. " * 2,
                               commune="47001", photos=(photo,))  # fmt: skip
        signed = await annonces.publish(app, annonces.Author("marie", "Marie D."), draft)
        refs.append(signed.annonce.ref)
    return refs


async def html_gzipped(base: str, path: str) -> tuple[int, int]:
    async with ClientSession(auto_decompress=False) as session:
        async with session.get(base + path, headers={"Accept-Encoding": "gzip"}) as response:
            body = await response.read()
            plain = gzip.decompress(body) if response.headers.get("Content-Encoding") else body
            return len(body), len(plain)


async def browse(base: str, path: str, width: int, height: int, *, scroll: bool):
    """What Chromium fetched for one page: [(url, resource type, bytes)]."""
    from playwright.async_api import async_playwright

    fetched = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM,
                                                   args=["--headless", "--no-sandbox"])  # fmt: skip
        context = await browser.new_context(viewport={"width": width, "height": height},
                                            device_scale_factor=2, is_mobile=True)  # fmt: skip
        page = await context.new_page()
        done = []
        page.on("requestfinished", lambda request: done.append(request))
        await page.goto(base + path, wait_until="networkidle")
        if scroll:
            for _ in range(40):
                await page.mouse.wheel(0, height)
                await page.wait_for_timeout(50)
            await page.wait_for_load_state("networkidle")
        for request in done:
            sizes = await request.sizes()
            fetched.append((request.url, request.resource_type,
                            sizes["responseHeadersSize"] + sizes["responseBodySize"]))  # fmt: skip
        await browser.close()
    return fetched


def report(label: str, fetched) -> int:
    total = sum(size for _, _, size in fetched)
    kinds: dict[str, list[int]] = {}
    for _url, kind, size in fetched:
        kinds.setdefault(kind, []).append(size)
    parts = ", ".join(f"{kind} {len(sizes)} × = {sum(sizes):,} B" for kind, sizes in kinds.items())
    print(f"{label}: {total:,} bytes ({parts})")
    return total


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def run(args) -> int:
    sent = pictures(args.photos)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        port = free_port()
        db = open_database(sqlite_url(data / "troc.db"))
        await migrate(db)
        await db.write(claim_database, NODE_KEY.node_id, "Banc d'essai", 1)
        settings = Settings(data_dir=data, name="Banc d'essai", public_url=f"http://127.0.0.1:{port}")
        app = create_app(settings, key=NODE_KEY, db=db)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        base = f"http://127.0.0.1:{port}"
        try:
            refs = await fill(app, sent)
            cards = [len(p.read_bytes()) for p in data.rglob("*-carte*")] or [0]
            print(f"{CARDS} annonces, one photo each; card files {min(cards):,}–{max(cards):,} B")
            wire, plain = await html_gzipped(base, "/")
            print(f"home page HTML: {wire:,} B gzipped ({plain:,} B plain)")
            first = report(f"first screen at {args.width}x{args.height}",
                           await browse(base, "/", args.width, args.height, scroll=False))  # fmt: skip
            report("after scrolling to the end", await browse(base, "/", args.width, args.height,
                                                              scroll=True))  # fmt: skip
            report("one annonce page", await browse(base, f"/annonces/{refs[0]}", args.width,
                                                    args.height, scroll=False))  # fmt: skip
        finally:
            await runner.cleanup()
    verdict = "within" if first <= BUDGET_BYTES else "OVER"
    print(f"first screen: {first:,} B, {verdict} the budget of {BUDGET_BYTES:,} B")
    return 0 if first <= BUDGET_BYTES else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--width", type=int, default=360)
    parser.add_argument("--height", type=int, default=640)
    parser.add_argument("--photos", type=Path, default=None)
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
