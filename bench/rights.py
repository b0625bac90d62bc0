"""Residents' rights at the size of a very talkative member: the download and the deletion.

Run from anywhere, without installing the project::

    python bench/rights.py [--messages 10000] [--conversations 100] [--annonces 200]

On SQLite in a temporary directory, with the node's real application
(``create_app``, no background tasks) and its real units of work, one member
has ``--annonces`` annonces and ``--messages`` messages spread over
``--conversations`` conversations, half with members of this node and half
with members of another node. Prints:

1. the download (``node.erasure.export``): its size, its time, and the peak
   of memory Python allocated while it was written (it is streamed a page of
   rows at a time, so the peak does not grow with the file);
2. the deletion (``node.erasure.delete_named``, one unit of work): its time,
   the tombstones, the conversations anonymised and the departure notices
   queued.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from node import annonces, erasure  # noqa: E402
from node.annonces import Author, Draft  # noqa: E402
from node.app import create_app  # noqa: E402
from node.settings import Settings  # noqa: E402
from protocol.annonce import Category, Kind  # noqa: E402
from protocol.identity import NodeKey  # noqa: E402
from storage import conversations as talk  # noqa: E402
from storage import residents  # noqa: E402
from storage.conversations import Party  # noqa: E402
from storage.db import migrate, open_database, sqlite_url  # noqa: E402
from storage.nodes import claim_database  # noqa: E402

OTHER_NODE = NodeKey.from_seed(b"\x02" * 32).node_id
TEXT = "Bonjour, je peux passer samedi vers 10 h pour la haie, si cela vous va toujours. " * 3


async def fill(app, db, own: bytes, args) -> None:
    def members(conn):
        made = [residents.create_member(conn, handle=f"membre-{n}", display_name=f"Membre {n}",
                                        state="active", password_hash="x", now=int(time.time()))
                for n in range(args.conversations // 2 + 1)]  # fmt: skip
        return made

    marie, *others = await db.write(members)
    signed = []
    for n in range(args.annonces):
        draft = Draft(kind=Kind.OFFER, category=Category.SERVICE, title=f"Aide au jardin {n}",
                      text="Je taille les haies le samedi.", commune="47001")  # fmt: skip
        signed.append(await annonces.publish(app, Author(marie.handle, "Marie Dupont"), draft,
                                             member_id=marie.id))  # fmt: skip
    per = args.messages // args.conversations

    def talking(conn):
        at = int(time.time())
        for n in range(args.conversations):
            local = n % 2 == 0
            other = (Party(own, others[n // 2].handle, others[n // 2].display_name,
                           others[n // 2].id) if local
                     else Party(OTHER_NODE, f"loin-{n}", f"Loin {n}"))  # fmt: skip
            uid = signed[n % len(signed)].annonce.uid
            conversation = talk.open_conversation(
                conn, key=n.to_bytes(16, "big"), annonce_origin=own, annonce_uid=uid,
                title="Aide au jardin", author=Party(own, marie.handle, "Marie Dupont", marie.id),
                replier=other, now=at)  # fmt: skip
            for m in range(per):
                talk.add_message(conn, conversation.id, key=(n * per + m).to_bytes(16, "big"),
                                 from_author=m % 2 == 0, body=TEXT, now=at)  # fmt: skip
        return marie

    return await db.write(talking)


async def run(args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = open_database(sqlite_url(Path(tmp) / "troc.db"))
        await migrate(db)
        key = NodeKey.from_seed(b"\x01" * 32)
        await db.write(claim_database, key.node_id, "Banc d'essai", int(time.time()))
        settings = Settings(data_dir=Path(tmp), name="Banc d'essai",
                            public_url="http://127.0.0.1:9", listen="127.0.0.1:9")  # fmt: skip
        app = create_app(settings, key=key, db=db, background_tasks=False)
        for startup in app.on_startup:
            await startup(app)
        marie = await fill(app, db, key.node_id, args)
        member = await db.read(residents.member_by_id, marie.id)

        tracemalloc.start()
        started, size = time.perf_counter(), 0
        async for chunk in erasure.export(app, member):
            size += len(chunk)
        took = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(f"download: {size / 1e6:.1f} MB for {args.messages} messages and "
              f"{args.annonces} annonces in {took:.2f} s; peak Python memory {peak / 1e6:.1f} MB")

        started = time.perf_counter()
        erased = await erasure.delete_named(app, member.handle)
        took = time.perf_counter() - started
        print(f"deletion: one unit of work in {took:.2f} s: {erased.annonces_withdrawn} "
              f"tombstones, {erased.conversations_kept} conversations anonymised, "
              f"{erased.departures_queued} departure notices queued")
        for cleanup in app.on_cleanup:
            await cleanup(app)
        await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--conversations", type=int, default=100)
    parser.add_argument("--annonces", type=int, default=200)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
