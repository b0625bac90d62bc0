"""Ingest benchmark: how close the node's write path comes to the floor.

Run from anywhere, without installing the project::

    python bench/ingest.py [--count N] [--batch B] [--postgres-url URL]
                           [--cpu C] [--repeat R] [--profile]

On one core (pinned with ``os.sched_setaffinity`` where the platform has it)
it measures, in records per second:

(a) the floor: Ed25519 verification (cryptography) + msgpack decoding + a
    batched insert with the stdlib's synchronous ``sqlite3`` into the node's
    own tables (made by its migrations: same columns and indexes), plus one
    ``INSERT … SELECT`` per batch into the FTS5 search index (WAL mode,
    synchronous=NORMAL), written in the most direct way;
(b) the node's own path: ``protocol.envelope.accept_envelope`` for each
    envelope, then ``storage.annonces.store_revisions`` per batch, on SQLite
    through ``storage.db.open_database``/``migrate`` in a temporary directory;
(c) the same on PostgreSQL, in a throw-away database that the script creates
    and drops (skipped, saying so, when the server cannot be reached).

The annonces are generated and signed before anything is timed. Every
measurement runs on a fresh database, each is run ``--repeat`` times (2 by
default) and the best run is kept. ``--profile`` adds a cProfile summary of
one more (b) run.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import hashlib
import io
import os
import platform
import pstats
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

# Run without installation: the repository root is this file's parent's parent.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import cryptography
import msgpack
import sqlalchemy
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from protocol import limits
from protocol.annonce import Annonce, Category, Kind, Point, State
from protocol.envelope import ANNONCE_DOMAIN, accept_envelope, sign_annonce
from protocol.identity import NodeKey
from storage.annonces import store_revisions
from storage.db import migrate, open_database, sqlite_url
from storage.schema import annonces as annonces_table
from storage.search import DOC_EPOCH, DOC_MASK, DOC_SHIFT

TARGET = 0.7
DEFAULT_POSTGRES_URL = os.environ.get(
    "TROC_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)

# --- The data set -------------------------------------------------------------

# Communes of Lot-et-Garonne (INSEE codes 47xxx), around Agen first.
COMMUNES = (
    "47001", "47031", "47032", "47201", "47100", "47209", "47091", "47040",
    "47225", "47069", "47145", "47015", "47300", "47169", "47051", "47246",
    "47019", "47137", "47016", "47323", "47157", "47195", "47104", "47310",
    "47238", "47233", "47262", "47276", "47023", "47165",
)  # fmt: skip
AGEN = (44.2033, 0.6163)

FIRST_NAMES = (
    "Marie", "Jean", "Camille", "Lucas", "Chloé", "Hugo", "Léa", "Louis",
    "Manon", "Gabriel", "Inès", "Arthur", "Jade", "Raphaël", "Élodie", "Michel",
    "Françoise", "Thierry", "Nathalie", "Sébastien", "Aïcha", "Karim", "Zoé",
)  # fmt: skip
LAST_NAMES = (
    "Dupont", "Martin", "Bernard", "Lafargue", "Castaing", "Dubois", "Ferrand",
    "Lacombe", "Sabatié", "Garcia", "Bousquet", "Labat", "Mercier", "Roux",
)  # fmt: skip

TITLES = {
    Category.SERVICE: (
        "Aide au jardin",
        "Tonte de pelouse le samedi",
        "Garde de chat pendant les vacances",
        "Repassage à domicile",
        "Covoiturage vers Bordeaux le lundi",
        "Petites réparations de vélo",
        "Aide aux devoirs (collège)",
    ),
    Category.SAVOIR_FAIRE: (
        "Cours de guitare pour débutants",
        "Initiation à la couture",
        "Apprendre à tailler les rosiers",
        "Conversation en occitan",
        "Atelier confitures et conserves",
        "Bases de l'informatique pour seniors",
    ),
    Category.OBJET: (
        "Prête tondeuse thermique",
        "Donne vêtements enfant 4-6 ans",
        "Échange plants de tomates contre courgettes",
        "Perceuse à percussion à prêter",
        "Cherche remorque pour un week-end",
        "Livres de poche à donner",
    ),
    Category.SORTIE: (
        "Balade le long du canal",
        "Sortie vélo vers Moirax",
        "Marché de Bon-Encontre ensemble",
        "Randonnée sur les coteaux de l'Agenais",
        "Pique-nique au bord de la Garonne",
    ),
    Category.COUP_DE_MAIN: (
        "Coup de main pour un déménagement",
        "Besoin d'aide pour monter une armoire",
        "Ramassage des prunes d'ente",
        "Vider un grenier à Layrac",
        "Porter un canapé au 2e étage",
    ),
}

SENTENCES = (
    "Je peux vous aider à tailler la haie, le samedi matin de préférence.",
    "Disponible en semaine après 17 h, et le week-end sur rendez-vous.",
    "J'ai de l'expérience et tout le matériel nécessaire, il suffit de me prévenir.",
    "En échange, un coup de main au potager me ferait très plaisir.",
    "Je me déplace dans toute l'agglomération d'Agen, à vélo ou en voiture.",
    "Les enfants sont les bienvenus, prévoyez simplement de bonnes chaussures.",
    "Rendez-vous devant la mairie, on partira ensemble vers dix heures.",
    "C'est gratuit, bien sûr : le principe de Troc, c'est l'entraide entre voisins.",
    "N'hésitez pas à me contacter pour en discuter, je réponds vite.",
    "Le matériel est en bon état, il a juste besoin d'un petit nettoyage.",
    "Pour les débutants comme pour ceux qui veulent se perfectionner.",
    "Il faudra être deux, idéalement trois, car c'est assez lourd.",
    "On peut aussi se retrouver au marché du Pin le samedi.",
    "Je garde volontiers vos animaux : chats, lapins, poules, pas de serpents !",
    "À récupérer sur place, à la sortie du village en direction de Nérac.",
    "Prévoir une bonne heure, peut-être un peu plus selon la météo.",
    "J'apprends l'espagnol et je cherche quelqu'un pour pratiquer la conversation.",
    "Merci d'avance, et au plaisir de vous rencontrer.",
    "Les pruniers croulent sous les fruits cette année, venez en profiter.",
    "Café et gâteau offerts à la fin, évidemment.",
)

# French typography puts a narrow no-break space before ; : ! ? and inside
# guillemets; some members type it (or their keyboard does).
NNBSP = "\u202f"


def _text(rng: random.Random, length: int) -> str:
    """A French text of about ``length`` characters (50 to 1,500)."""
    parts: list[str] = []
    size = 0
    while size < length:
        sentence = rng.choice(SENTENCES)
        if parts and rng.random() < 0.15:
            parts.append("\n\n")
            size += 2
        elif parts:
            parts.append(" ")
            size += 1
        parts.append(sentence)
        size += len(sentence)
    text = "".join(parts)[:length].rstrip()
    if len(text) < 50:
        text = (text + " " + SENTENCES[0])[:length]
    return text


def _typeset(rng: random.Random, text: str) -> str:
    """About one text in ten is typed with French non-breaking spaces."""
    if rng.random() < 0.1:
        for mark in ";:!?":
            text = text.replace(f" {mark}", f"{NNBSP}{mark}")
        text = text.replace("« ", f"«{NNBSP}").replace(" »", f"{NNBSP}»")
    return text


def generate(count: int, now: int, *, seed: int = 47) -> tuple[list[bytes], dict]:
    """``count`` signed envelopes of distinct annonces, and a few statistics."""
    rng = random.Random(seed)
    keys = [NodeKey.from_seed(hashlib.sha256(f"bench-origin-{i}".encode()).digest())
            for i in range(7)]  # fmt: skip
    weights = [30, 20, 15, 12, 10, 8, 5]  # a few big nodes, several small ones
    members = {
        key.node_id: [
            (f"{first.lower()}-{i}".translate(_ASCII), f"{first} {last}")
            for i, (first, last) in enumerate(
                (rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)) for _ in range(40)
            )
        ]
        for key in keys
    }
    categories = list(Category)
    envelopes: list[bytes] = []
    lengths: list[int] = []
    with_point = 0
    for _ in range(count):
        key = rng.choices(keys, weights)[0]
        handle, name = rng.choice(members[key.node_id])
        category = rng.choice(categories)
        # Text lengths 50-1,500: many short annonces, a long tail.
        length = min(1500, max(50, int(rng.lognormvariate(6.0, 0.75))))
        text = _typeset(rng, _text(rng, length))
        rev = 1 if rng.random() < 0.8 else rng.randint(2, 6)
        created = now - rng.randint(0, 20 * 86400)
        updated = (
            created if rev == 1 else min(now, created + rng.randint(60, 5 * 86400))
        )
        expires = updated + rng.randint(30 * 86400, limits.MAX_LIFETIME_S)
        commune = rng.choice(COMMUNES) if rng.random() < 0.9 else None
        point = None
        if commune is None or rng.random() < 0.3:
            point = Point.from_degrees(
                AGEN[0] + rng.uniform(-0.25, 0.25), AGEN[1] + rng.uniform(-0.3, 0.3)
            )
            with_point += 1
        state = rng.choices(list(State), [90, 8, 2])[0]  # open, fulfilled, withdrawn
        annonce = Annonce(
            origin=key.node_id,
            uid=rng.randbytes(limits.ANNONCE_UID_BYTES),
            rev=rev,
            kind=Kind.OFFER if rng.random() < 0.65 else Kind.REQUEST,
            category=category,
            title=rng.choice(TITLES[category]),
            text=text,
            lang="fr",
            commune=commune,
            point=point,
            author_handle=handle,
            author_name=name,
            created=created,
            updated=updated,
            expires=expires,
            state=state,
            sortie_at=(
                updated + rng.randint(86400, 60 * 86400)
                if category is Category.SORTIE
                else None
            ),
        )
        envelopes.append(sign_annonce(key, annonce).envelope)
        lengths.append(len(text))
    stats = {
        "origins": len(keys),
        "text_median": int(statistics.median(lengths)),
        "text_min": min(lengths),
        "text_max": max(lengths),
        "with_point": with_point / count,
        "envelope_avg": sum(map(len, envelopes)) / count,
    }
    return envelopes, stats


_ASCII = str.maketrans("éèëêïîôöàâçÉ", "eeeeiiooaace")


# --- (a) the floor --------------------------------------------------------------


async def _migrated(path: Path) -> None:
    db = open_database(sqlite_url(path))
    try:
        await migrate(db)
    finally:
        await db.close()


FLOOR_INSERT = (
    "INSERT INTO annonces (origin, uid, id, rev, created, updated, expires, state,"
    " kind, category, title, text, lang, commune, lat, lon, author_handle,"
    " author_name, sortie_at, envelope, received_at, source, hidden)"
    " VALUES (" + ", ".join("?" * 23) + ")"
)
# The search index takes the batch just inserted in one statement, as
# storage/search.py does (the document id packs the creation time and rowid).
FLOOR_INDEX = (
    "INSERT INTO annonces_fts(rowid, title, text)"
    f" SELECT ((created - {DOC_EPOCH}) << {DOC_SHIFT}) | (rowid & {DOC_MASK}), title, text"
    " FROM annonces WHERE rowid > ? AND state != 'withdrawn'"
)


def run_floor(
    envelopes: list[bytes], batch: int, now: int, path: Path
) -> tuple[float, float]:
    """Verify, decode, insert and index in the most direct way.

    The tables (annonces and its search index) are made by the node's own
    migrations, so the floor writes to exactly the same schema.

    Returns the seconds taken in all, and those spent in the inserts.
    """
    asyncio.run(_migrated(path))
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    unpackb, sha256 = msgpack.unpackb, hashlib.sha256
    from_public_bytes = Ed25519PublicKey.from_public_bytes
    started = time.perf_counter()
    storing = 0.0
    for start in range(0, len(envelopes), batch):
        rows = []
        for data in envelopes[start : start + batch]:
            origin, body, signature = unpackb(data)
            from_public_bytes(origin).verify(signature, ANNONCE_DOMAIN + body)
            b = unpackb(body)
            point = b["point"]
            rows.append((
                origin, b["uid"], sha256(body).digest(), b["rev"], b["created"],
                b["updated"], b["expires"], b["state"], b["kind"], b["category"],
                b["title"], b["text"], b["lang"], b["commune"],
                point[0] if point else None, point[1] if point else None,
                b["handle"], b["name"], b["sortie_at"], data, now, None, 0,
            ))  # fmt: skip
        opened = time.perf_counter()
        conn.execute("BEGIN")
        last = conn.execute("SELECT coalesce(max(rowid), 0) FROM annonces").fetchone()[0]
        conn.executemany(FLOOR_INSERT, rows)
        conn.execute(FLOOR_INDEX, (last,))
        conn.execute("COMMIT")
        storing += time.perf_counter() - opened
    elapsed = time.perf_counter() - started
    stored = conn.execute("SELECT count(*) FROM annonces").fetchone()[0]
    conn.close()
    _check_count("(a)", stored, len(envelopes))
    return elapsed, storing


def _check_count(label: str, stored: int, expected: int) -> None:
    if stored != expected:
        raise SystemExit(f"{label} stored {stored} rows, expected {expected}")


# --- (b) and (c): the node's own path --------------------------------------------


async def _ingest(
    db, envelopes: list[bytes], batch: int, now: int
) -> tuple[float, float]:
    """The seconds taken in all, and those spent in store_revisions."""
    started = time.perf_counter()
    storing = 0.0
    for start in range(0, len(envelopes), batch):
        signed = [
            accept_envelope(data, now) for data in envelopes[start : start + batch]
        ]
        opened = time.perf_counter()
        await db.write(store_revisions, signed, now=now)
        storing += time.perf_counter() - opened
    return time.perf_counter() - started, storing


def _count_rows(conn) -> int:
    return conn.execute(
        sqlalchemy.select(sqlalchemy.func.count()).select_from(annonces_table)
    ).scalar_one()


async def _count(db) -> int:
    return await db.read(_count_rows)


async def run_node(
    url: str, envelopes: list[bytes], batch: int, now: int, label: str
) -> tuple[float, float]:
    """Migrate a fresh database at ``url``, then time the node's ingest into it."""
    db = open_database(url)
    try:
        await migrate(db)  # also leaves a warm connection in the pool
        timings = await _ingest(db, envelopes, batch, now)
        _check_count(label, await _count(db), len(envelopes))
    finally:
        await db.close()
    return timings


def run_sqlite_node(envelopes, batch, now, path: Path) -> tuple[float, float]:
    return asyncio.run(run_node(sqlite_url(path), envelopes, batch, now, "(b)"))


# PostgreSQL: a throw-away database per run, made and dropped with asyncpg itself
# (CREATE DATABASE cannot run inside a transaction), as tests/conftest.py does.


async def _admin(admin_url: str, statement: str) -> None:
    import asyncpg

    url = admin_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    conn = await asyncpg.connect(url, timeout=5)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def postgres_unreachable(admin_url: str) -> str | None:
    try:
        asyncio.run(_admin(admin_url, "SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - whatever keeps us from the server
        return f"{type(exc).__name__}: {exc}"
    return None


def run_postgres_node(envelopes, batch, now, admin_url: str) -> tuple[float, float]:
    name = f"troc_bench_{uuid.uuid4().hex[:12]}"
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"

    async def run() -> tuple[float, float]:
        await _admin(admin_url, f'CREATE DATABASE "{name}"')
        try:
            return await run_node(url, envelopes, batch, now, "(c)")
        finally:
            await _admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return asyncio.run(run())


# --- Running and reporting ------------------------------------------------------------


def pin_to_one_core(wanted: int | None) -> str:
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned: os.sched_setaffinity is not available on this platform"
    allowed = sorted(os.sched_getaffinity(0))
    cpu = allowed[-1] if wanted is None else wanted
    os.sched_setaffinity(0, {cpu})
    return (
        f"pinned to CPU {cpu} with os.sched_setaffinity (of {len(allowed)} allowed); "
        "the database's writer thread inherits it, the PostgreSQL server's processes do not"
    )


def measure_rounds(
    repeat: int, count: int, measures: dict
) -> dict[str, tuple[float, float]]:
    """The best run of each measurement over ``repeat`` rounds.

    Each measure returns (seconds in all, seconds storing); the best run is the
    one with the least time in all. The rounds are interleaved (a, b, c, a, b,
    c) rather than a, a, b, b, so that a burst of load elsewhere on the machine
    weighs on all of them alike. Every call of a measure uses a fresh database.
    """
    runs: dict[str, list[tuple[float, float]]] = {label: [] for label in measures}
    for run in range(1, repeat + 1):
        for label, measure in measures.items():
            gc.collect()
            elapsed, storing = measure()
            runs[label].append((elapsed, storing))
            print(
                f"    run {run} {label}: {count / elapsed:>9,.0f} rec/s  ({elapsed:.2f} s)",
                flush=True,
            )
    return {label: min(timings) for label, timings in runs.items()}


def profile_node(envelopes, batch, now, top: int) -> str:
    with tempfile.TemporaryDirectory(prefix="troc-bench-") as tmp:
        url = sqlite_url(Path(tmp) / "profile.db")

        async def run():
            db = open_database(url)
            try:
                await migrate(db)
                profiler = cProfile.Profile()
                profiler.enable()
                await _ingest(db, envelopes, batch, now)
                profiler.disable()
            finally:
                await db.close()
            return profiler

        profiler = asyncio.run(run())
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs()
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--count", type=int, default=20_000, help="annonces (default 20,000)"
    )
    parser.add_argument(
        "--batch", type=int, default=500, help="batch size (default 500)"
    )
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL,
                        help="an admin URL of the PostgreSQL server (default %(default)s)")  # fmt: skip
    parser.add_argument(
        "--cpu",
        type=int,
        default=None,
        help="the core to pin to (default: the last allowed)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=2,
        help="runs per measurement, best kept (default 2)",
    )
    parser.add_argument(
        "--profile", action="store_true", help="also cProfile one (b) run"
    )
    args = parser.parse_args(argv)
    if args.count < 1 or args.batch < 1 or args.repeat < 1:
        parser.error("--count, --batch and --repeat must be positive")

    pinning = pin_to_one_core(args.cpu)  # before any thread is started
    print(f"Troc ingest benchmark: {args.count:,} annonces, batches of {args.batch}, "
          f"best of {args.repeat} runs, each on a fresh database")  # fmt: skip
    print(f"  one core: {pinning}")
    print(f"  Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
          f"cryptography {cryptography.__version__}, msgpack {'.'.join(map(str, msgpack.version))}, "
          f"SQLAlchemy {sqlalchemy.__version__}")  # fmt: skip

    now = int(time.time())
    started = time.perf_counter()
    envelopes, stats = generate(args.count, now)
    print(f"  generated and signed in {time.perf_counter() - started:.1f} s (not timed): "
          f"{stats['origins']} origins, texts {stats['text_min']}-{stats['text_max']} chars "
          f"(median {stats['text_median']}), {stats['with_point']:.0%} with a point, "
          f"envelopes {stats['envelope_avg']:,.0f} B on average")  # fmt: skip

    unreachable = postgres_unreachable(args.postgres_url)
    print(
        "(a) floor: Ed25519 verify + msgpack decode + sqlite3 executemany + FTS5 INSERT…SELECT (WAL, synchronous=NORMAL)"
    )
    print(
        "(b) node on SQLite: accept_envelope + Database.write(store_revisions) (the one writer thread, sqlite3 via SQLAlchemy)"
    )
    if unreachable is None:
        print("(c) node on PostgreSQL: accept_envelope + Database.write(store_revisions) (asyncpg via SQLAlchemy),"
              " a throw-away database per run")  # fmt: skip
    else:
        print(
            f"(c) SKIPPED: PostgreSQL is not reachable at {args.postgres_url} ({unreachable})"
        )
    with tempfile.TemporaryDirectory(prefix="troc-bench-") as tmp:
        fresh = iter(range(1_000_000))

        def path() -> Path:
            return Path(tmp) / f"run-{next(fresh)}.db"

        measures = {
            "(a)": lambda: run_floor(envelopes, args.batch, now, path()),
            "(b)": lambda: run_sqlite_node(envelopes, args.batch, now, path()),
        }
        if unreachable is None:
            measures["(c)"] = lambda: run_postgres_node(
                envelopes, args.batch, now, args.postgres_url
            )
        best = measure_rounds(args.repeat, args.count, measures)
    print()
    names = {
        "(a)": ("floor", "verify+decode+row", "sqlite3 insert"),
        "(b)": ("node, SQLite", "accept_envelope", "store_revisions"),
        "(c)": ("node, PostgreSQL", "accept_envelope", "store_revisions"),
    }
    rates = {}
    for label, (elapsed, storing) in best.items():
        name, first, second = names[label]
        rates[label] = args.count / elapsed
        per_record = 1e6 / args.count
        print(f"{label} {name:<18} {rates[label]:>9,.0f} rec/s   per record: "
              f"{(elapsed - storing) * per_record:5.1f} us {first} + "
              f"{storing * per_record:5.1f} us {second}")  # fmt: skip
    ratio = rates["(b)"] / rates["(a)"]
    print(f"b/a = {ratio:.2f}")
    if "(c)" in rates:
        print(f"c/a = {rates['(c)'] / rates['(a)']:.2f}")
    else:
        print("c/a = n/a (PostgreSQL skipped)")
    print(f"target b/a >= {TARGET}: {'reached' if ratio >= TARGET else 'NOT reached'}")

    if args.profile:
        print()
        print(
            "cProfile of one more (b) run (SQLite). cProfile sees the main thread only:"
        )
        print(
            "select.epoll.poll is the event loop waiting for the database's writer thread,"
        )
        print("i.e. SQLite itself plus the hand-over between the threads.")
        print(profile_node(envelopes, args.batch, now, top=25))
    return 0


if __name__ == "__main__":
    sys.exit(main())
