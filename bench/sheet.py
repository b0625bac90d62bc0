"""Sheet benchmark: the time to make the printed sheet, with 10,000 annonces held.

Run from anywhere, without installing the project::

    python bench/sheet.py [--count N] [--runs R]

It stores ``--count`` signed annonces in a fresh SQLite database through the
node's own ingest path (short codes included), builds the node's real
application, and times, each ``--runs`` times:

    query      the newest open annonces of the area (storage/sheet.py)
    html       the sheet's HTML from them (template, QR code)
    pdf        WeasyPrint's PDF of that HTML
    sheet      the whole of node.sheet's making (``make_now``): query, HTML, PDF
    kept       a sheet asked again while it is kept (SHEET_CACHE_S)
    /ref       one code looked up (storage/sheet.py by_code, through the index)

It prints the best and the median of the runs in milliseconds. The figure
that matters is ``sheet``: the node makes one at a time in a worker thread
(node/sheet.py), so it is also how long a core is busy per sheet made.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aiohttp import web  # noqa: E402

from node import sheet  # noqa: E402
from node.app import create_app  # noqa: E402
from node.settings import Settings  # noqa: E402
from node.sheet import MAX_SHEET_ANNONCES  # noqa: E402
from protocol.annonce import Annonce, Category, Kind, State  # noqa: E402
from protocol.envelope import sign_annonce  # noqa: E402
from protocol.identity import NodeKey  # noqa: E402
from protocol.short_code import short_code  # noqa: E402
from storage import sheet as sheet_store  # noqa: E402
from storage.annonces import store_revisions  # noqa: E402
from storage.db import migrate, open_database, sqlite_url  # noqa: E402
from storage.nodes import claim_database  # noqa: E402

NOW = 1_790_000_000
COMMUNES = ("47001", "47031", "47091", "47201", "47032", "47100", "47209", "47145")
TITLES = ("Aide au jardin le samedi", "Cours de tricot pour débutants", "Prêt d'une perceuse",
          "Balade au bord du canal", "Coup de main pour un déménagement", "Vélo d'enfant à donner")  # fmt: skip


def annonces(key: NodeKey, count: int) -> list:
    kinds, categories = list(Kind), [c for c in Category if c is not Category.SORTIE]
    return [sign_annonce(key, Annonce(
        origin=key.node_id, uid=os.urandom(16), rev=1, kind=kinds[i % 2],
        category=categories[i % len(categories)], title=f"{TITLES[i % len(TITLES)]} ({i})",
        text="Bonjour, je peux vous aider le samedi matin ou le mercredi après-midi. " * 3,
        lang="fr", commune=COMMUNES[i % len(COMMUNES)], point=None, author_handle="marie",
        author_name="Marie Dupont", created=NOW - count + i, updated=NOW - count + i,
        expires=NOW + 30 * 86400, state=State.OPEN, sortie_at=None,
    )) for i in range(count)]  # fmt: skip


def timed(runs: int, function) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1000)
    return times


async def atimed(runs: int, function) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        await function()
        times.append((time.perf_counter() - start) * 1000)
    return times


async def main(count: int, runs: int) -> None:
    key = NodeKey.from_seed(b"\x42" * 32)
    with tempfile.TemporaryDirectory() as tmp:
        db = open_database(sqlite_url(Path(tmp) / "troc.db"))
        await migrate(db)
        await db.write(claim_database, key.node_id, "Bench", NOW)
        batch = annonces(key, count)
        for start in range(0, count, 1000):
            await db.write(store_revisions, batch[start : start + 1000], now=NOW)
        settings = Settings(data_dir=Path(tmp), name="Centre social de Montanou",
                            public_url="https://troc.montanou.example",
                            association_phone="05 53 00 00 00",
                            association_address="12 rue des Lilas | 47000 Agen")  # fmt: skip
        app = create_app(settings, key=key, db=db, clock=lambda: NOW, background_tasks=False)
        runner = web.AppRunner(app)
        await runner.setup()  # the app's start-up: communes, translations, the sheet's check
        communes = sheet.sheet_communes(app)
        found = await db.read(sheet_store.newest_open, communes, now=NOW, limit=MAX_SHEET_ANNONCES)
        html = sheet.sheet_html(app, found, communes, NOW)
        code = short_code(batch[-1].annonce.origin, batch[-1].annonce.uid)
        results = {
            "query": await atimed(runs, lambda: db.read(sheet_store.newest_open, communes,
                                                         now=NOW, limit=MAX_SHEET_ANNONCES)),
            "html": timed(runs, lambda: sheet.sheet_html(app, found, communes, NOW)),
            "pdf": timed(runs, lambda: sheet.html_to_pdf(html)),
            "sheet": await atimed(runs, lambda: sheet.make_now(app, communes)),
            "kept": await atimed(runs, lambda: sheet.make_sheet(app)),
            "/ref": await atimed(runs, lambda: sheet.find_code(app, code)),
        }  # fmt: skip
        made = await sheet.make_sheet(app)
        print(f"{count} annonces held; the sheet lists {made.annonces}, {len(made.pdf) // 1024} KB")
        for name, times in results.items():
            print(f"  {name:6}  best {min(times):8.2f} ms   median {statistics.median(times):8.2f} ms")
        await runner.cleanup()
        await db.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    asyncio.run(main(args.count, args.runs))
