"""The association's desk on a big node: what the queue costs a coordinator's pages.

Run from anywhere, without installing the project::

    python bench/desk.py [--members 5000] [--conversations 20000] [--messages 4]
                         [--accompanied 200] [--per-coordinator 40] [--runs 200]

On SQLite in a temporary directory, with the real storage functions: a node
of ``--members`` members and ``--conversations`` conversations of
``--messages`` messages each, ``--accompanied`` of the members accompanied
(each in several conversations), a coordinator accompanying
``--per-coordinator`` of them. Every page a coordinator opens counts the
replies waiting (``waiting_calls``, in the menu's badge); « La permanence »
lists the queue (``queue``). Prints the median time of each, of the one
lookup every other member's page makes (``is_coordinator``), and of the
menu's unread count every member's page already makes, for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from storage import conversations as talk  # noqa: E402
from storage import desk as desk_store  # noqa: E402
from storage import residents  # noqa: E402
from storage.conversations import Party  # noqa: E402
from storage.db import migrate, open_database, sqlite_url  # noqa: E402

NOW = 1_790_000_000
OWN = b"\x01" * 32
OTHER = b"\x02" * 32


def _fill(conn, args, rng: random.Random) -> tuple[int, int]:
    ids = [residents.create_member(conn, handle=f"m-{n}", display_name=f"Membre {n}",
                                   password_hash="x", state="active", now=NOW).id
           for n in range(args.members)]  # fmt: skip
    coordinator, plain = ids[0], ids[1]
    desk_store.grant(conn, coordinator, NOW)
    accompanied = ids[2:2 + args.accompanied]
    for n, member_id in enumerate(accompanied):
        desk_store.add_accompanied(conn, member_id, reach="desk", phone=None,
                                   coordinator_id=coordinator if n < args.per_coordinator else plain,
                                   now=NOW)  # fmt: skip
    for c in range(args.conversations):
        author = rng.choice(accompanied if c % 10 == 0 else ids)
        conversation = talk.open_conversation(
            conn, key=os.urandom(16), annonce_origin=OWN, annonce_uid=os.urandom(16),
            title=f"Annonce {c}", author=Party(OWN, f"m-{author}", "Auteur", author),
            replier=Party(OTHER, f"r-{c}", "Voisin"), now=NOW + c)  # fmt: skip
        for m in range(args.messages):
            talk.add_message(conn, conversation.id, key=os.urandom(16), from_author=m % 2 == 1,
                             body="Bonjour, je peux passer mardi.", now=NOW + c + m)  # fmt: skip
    return coordinator, plain


def _median_ms(run, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


async def main(args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = open_database(sqlite_url(Path(tmp) / "troc.db"))
        await migrate(db)
        coordinator, plain = await db.write(_fill, args, random.Random(7))

        def timed(conn):
            return {
                "waiting_calls (coordinator's every page)": _median_ms(
                    lambda: desk_store.waiting_calls(conn, coordinator), args.runs),
                "queue (« La permanence »)": _median_ms(
                    lambda: desk_store.queue(conn, coordinator, 100), args.runs),
                "is_coordinator (any member's page)": _median_ms(
                    lambda: desk_store.is_coordinator(conn, plain), args.runs),
                "unread_total (menu, for comparison)": _median_ms(
                    lambda: talk.unread_total(conn, plain), args.runs),
            }  # fmt: skip

        results = await db.read(timed)
        waiting = await db.read(desk_store.waiting_calls, coordinator)
        await db.close()
    print(f"{args.members} members, {args.conversations} conversations of {args.messages} "
          f"messages, {args.accompanied} accompanied, {args.per_coordinator} for the "
          f"coordinator ({waiting} replies waiting)")  # fmt: skip
    for name, ms in results.items():
        print(f"  {name:45} {ms:8.3f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=5000)
    parser.add_argument("--conversations", type=int, default=20000)
    parser.add_argument("--messages", type=int, default=4)
    parser.add_argument("--accompanied", type=int, default=200)
    parser.add_argument("--per-coordinator", type=int, default=40)
    parser.add_argument("--runs", type=int, default=200)
    asyncio.run(main(parser.parse_args()))
