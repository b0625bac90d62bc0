"""Annonces in the database: ingest of verified revisions, and reads.

``store_revisions`` is the one write path, for annonces from residents and from
peers alike. It takes revisions already verified by ``protocol.envelope`` and
keeps, per annonce ``(origin, uid)``, only the revision that
``protocol.annonce.revision_key`` ranks highest. A whole batch costs a fixed
handful of round trips: blocked origins, current revisions, one upsert. The
upsert repeats the ordering rule in SQL, so two writers racing (several web
workers on PostgreSQL) still keep the right revision.

Every function takes a ``Connection`` first: run it with ``Database.read``
or ``Database.write``, alone or with others in one unit of work. A write that
changes the annonces held says so (``touch(conn, ANNONCES, ...)``), so that
caches are refreshed once it has committed.

An operator's hide (storage.moderation) is on the annonce, not on one
revision: the upsert never replaces ``hidden``, ``hidden_reason`` or
``hidden_at``, so a newer revision of a hidden annonce is stored hidden.
``FORWARDABLE`` says which current revisions may be served to peers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import and_, delete, func, or_, select, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from protocol.annonce import Annonce, Category, Kind, Point, State, revision_key
from protocol.envelope import SignedAnnonce
from storage import photos as photo_store
from storage import search_index, short_codes
from storage.db import touch
from storage.schema import annonces, blocked_origins

# The topic of every change to the annonces held (storage.db.touch): its keys
# are the ids of the revisions newly stored.
ANNONCES = "annonces"
# Touched when this node's own annonces change (node/annonces.py): members' offers.
OWN_ANNONCES = "own_annonces"

# Bound parameters per statement stay well below SQLite's and asyncpg's limits.
QUERY_CHUNK = 500


@dataclass(frozen=True, slots=True)
class IngestResult:
    accepted: list[SignedAnnonce]
    duplicates: int = 0
    superseded: int = 0
    blocked: int = 0


@dataclass(frozen=True, slots=True)
class StoredAnnonce:
    """The current revision of an annonce as this node holds it."""

    id: bytes
    annonce: Annonce
    envelope: bytes
    received_at: int
    source: bytes | None
    hidden: bool
    hidden_reason: str | None = None
    hidden_at: int | None = None


def _chunks(items: Sequence, size: int = QUERY_CHUNK) -> Iterable[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _newest_per_annonce(batch: Iterable[SignedAnnonce]) -> dict[tuple, SignedAnnonce]:
    newest: dict[tuple[bytes, bytes], SignedAnnonce] = {}
    for signed in batch:
        a = signed.annonce
        key = (a.origin, a.uid)
        held = newest.get(key)
        if held is None or _rank(signed) > _rank(held):
            newest[key] = signed
    return newest


def _rank(signed: SignedAnnonce) -> tuple[int, int, bytes]:
    return revision_key(signed.annonce.rev, signed.annonce.updated, signed.id)


# The upsert's columns, in the order of its positional parameters (checked
# against the compiled statement in _upsert_sql).
_ROW_COLUMNS = (
    "origin", "uid", "id", "rev", "created", "updated", "expires", "state",
    "kind", "category", "title", "text", "lang", "commune", "lat", "lon",
    "author_handle", "author_name", "sortie_at", "envelope", "received_at",
    "source", "hidden", "hidden_reason", "hidden_at", "photos",
)  # fmt: skip


def _row(signed: SignedAnnonce, now: int, source: bytes | None) -> tuple:
    """The upsert's parameters for one revision, in _ROW_COLUMNS order.

    A plain tuple rather than a dict: it goes to the driver's executemany as
    it is (see _upsert_sql).
    """
    a = signed.annonce
    point = a.point
    return (
        a.origin, a.uid, signed.id, a.rev, a.created, a.updated, a.expires,
        a.state.value, a.kind.value, a.category.value, a.title, a.text, a.lang,
        a.commune, point.lat if point else None, point.lon if point else None,
        a.author_handle, a.author_name, a.sortie_at, signed.envelope, now,
        source, False, None, None, photo_store.pack_photos(a.photos),
    )  # fmt: skip


# The moderation columns belong to the annonce, not to the revision: kept.
_KEPT_COLUMNS = ("origin", "uid", "hidden", "hidden_reason", "hidden_at")
_REPLACED_COLUMNS = [c.name for c in annonces.columns if c.name not in _KEPT_COLUMNS]

# A current revision this node serves to peers (fetch, push, the outbox): any
# but a hidden annonce's. A tombstone is served even when hidden: it carries
# no text, and it is what removes the annonce from the other nodes.
FORWARDABLE = or_(~annonces.c.hidden, annonces.c.state == State.WITHDRAWN.value)


def _upsert(dialect: str):
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(annonces)
    incoming = tuple_(stmt.excluded.rev, stmt.excluded.updated, stmt.excluded.id)
    held = tuple_(annonces.c.rev, annonces.c.updated, annonces.c.id)
    return stmt.on_conflict_do_update(
        index_elements=[annonces.c.origin, annonces.c.uid],
        set_={name: stmt.excluded[name] for name in _REPLACED_COLUMNS},
        where=incoming > held,
    )


_UPSERT_SQL: dict[tuple[str, str, str], str] = {}


def _upsert_sql(dialect) -> str:
    """The upsert compiled once for ``dialect``, for the driver's executemany.

    Performance: executing the Core statement with one dict per row costs
    SQLAlchemy a parameter-processing pass per row (construct_params and a bind
    processor per binary or boolean column), which bench/ingest.py measured at
    about 40% of the time spent inside the upsert. The same SQL text goes to
    ``exec_driver_sql`` with positional tuples instead: the same statement, one
    executemany, no per-row work in SQLAlchemy. The values need no conversion:
    bytes, int, str and None are taken as they are by sqlite3 and asyncpg, and
    ``False`` is stored as 0 by sqlite3 and as false by asyncpg, as
    SQLAlchemy's Boolean would have it.
    """
    key = (dialect.name, dialect.driver, dialect.paramstyle)
    if key not in _UPSERT_SQL:
        compiled = _upsert(dialect.name).compile(dialect=dialect)
        if tuple(compiled.positiontup or ()) != _ROW_COLUMNS:
            raise RuntimeError(
                f"the compiled upsert takes {compiled.positiontup}, not _ROW_COLUMNS"
            )
        _UPSERT_SQL[key] = str(compiled)
    return _UPSERT_SQL[key]


def _held_revisions(keys: Sequence[tuple[bytes, bytes]]):
    """Select the current revision of each ``(origin, uid)`` in ``keys``.

    The uids are grouped by origin, ``(origin = ? AND uid IN (...)) OR ...``,
    so that both SQLite and PostgreSQL look them up through the ``(origin, uid)``
    primary key; a bare ``uid IN (...)`` cannot use that index and scanned the
    whole table once per batch, a cost that grew with every annonce held. Still
    one round trip per chunk, with at most ``2 * QUERY_CHUNK`` bound parameters.
    """
    uids_by_origin: dict[bytes, list[bytes]] = {}
    for origin, uid in keys:
        uids_by_origin.setdefault(origin, []).append(uid)
    return select(
        annonces.c.origin, annonces.c.uid, annonces.c.rev,
        annonces.c.updated, annonces.c.id,
    ).where(
        or_(*(
            and_(annonces.c.origin == origin, annonces.c.uid.in_(uids))
            for origin, uids in uids_by_origin.items()
        ))
    )  # fmt: skip


def store_revisions(
    conn: Connection,
    batch: Sequence[SignedAnnonce],
    *,
    now: int,
    source: bytes | None = None,
) -> IngestResult:
    """Keep the newest revision of each annonce; say which revisions were new."""
    newest = _newest_per_annonce(batch)
    if not newest:
        return IngestResult(accepted=[])
    origins = list({origin for origin, _ in newest})
    blocked = set()
    for chunk in _chunks(origins):
        result = conn.execute(
            select(blocked_origins.c.origin).where(blocked_origins.c.origin.in_(chunk))
        )
        blocked.update(result.scalars())
    held: dict[tuple[bytes, bytes], tuple] = {}
    for chunk in _chunks(list(newest)):
        for origin, uid, rev, updated, held_id in conn.execute(_held_revisions(chunk)):
            held[(origin, uid)] = revision_key(rev, updated, held_id)
    accepted, duplicates, superseded, refused = [], 0, 0, 0
    for key, signed in newest.items():
        if key[0] in blocked:
            refused += 1
        elif key not in held or _rank(signed) > held[key]:
            accepted.append(signed)
        elif _rank(signed) == held[key]:
            duplicates += 1
        else:
            superseded += 1
    if accepted:
        keys = [(s.annonce.origin, s.annonce.uid) for s in accepted]
        search_index.unindex_annonces(conn, [k for k in keys if k in held])
        conn.exec_driver_sql(_upsert_sql(conn.dialect), [_row(s, now, source) for s in accepted])
        search_index.index_annonces(conn, keys)
        short_codes.give_codes(conn, [k for k in keys if k not in held])
        photo_store.link_revisions(conn, accepted, replaced=[k for k in keys if k in held])
        touch(conn, ANNONCES, *(s.id for s in accepted))
    duplicates += len(batch) - len(newest)
    return IngestResult(accepted, duplicates, superseded, refused)


def _annonce_from_row(row) -> Annonce:
    return Annonce(
        origin=row.origin,
        uid=row.uid,
        rev=row.rev,
        kind=Kind(row.kind),
        category=Category(row.category),
        title=row.title,
        text=row.text,
        lang=row.lang,
        commune=row.commune,
        point=Point(row.lat, row.lon) if row.lat is not None else None,
        author_handle=row.author_handle,
        author_name=row.author_name,
        created=row.created,
        updated=row.updated,
        expires=row.expires,
        state=State(row.state),
        sortie_at=row.sortie_at,
        photos=photo_store.unpack_photos(row.photos),
    )


def stored_annonce(row) -> StoredAnnonce:
    return StoredAnnonce(
        id=row.id,
        annonce=_annonce_from_row(row),
        envelope=row.envelope,
        received_at=row.received_at,
        source=row.source,
        hidden=bool(row.hidden),
        hidden_reason=row.hidden_reason,
        hidden_at=row.hidden_at,
    )


def get_annonce(conn: Connection, origin: bytes, uid: bytes) -> StoredAnnonce | None:
    row = conn.execute(
        select(annonces).where(and_(annonces.c.origin == origin, annonces.c.uid == uid))
    ).first()
    return stored_annonce(row) if row else None


def get_by_id(conn: Connection, annonce_id: bytes) -> StoredAnnonce | None:
    row = conn.execute(select(annonces).where(annonces.c.id == annonce_id)).first()
    return stored_annonce(row) if row else None


def envelopes_by_id(conn: Connection, ids: Sequence[bytes]) -> dict[bytes, bytes]:
    """The signed envelopes this node holds and forwards among ``ids`` (see FORWARDABLE)."""
    found: dict[bytes, bytes] = {}
    for chunk in _chunks(list(ids)):
        result = conn.execute(
            select(annonces.c.id, annonces.c.envelope).where(annonces.c.id.in_(chunk), FORWARDABLE)
        )
        found.update((row.id, row.envelope) for row in result)
    return found


def annonces_by_id(conn: Connection, ids: Sequence[bytes]) -> dict[bytes, Annonce]:
    """The current revisions among ``ids`` that residents may see (not hidden)."""
    found: dict[bytes, Annonce] = {}
    for chunk in _chunks(list(ids)):
        result = conn.execute(select(annonces).where(annonces.c.id.in_(chunk), FORWARDABLE))
        found.update((row.id, _annonce_from_row(row)) for row in result)
    return found


def known_ids(conn: Connection, ids: Sequence[bytes]) -> set[bytes]:
    """Which of ``ids`` are current revisions held here."""
    known: set[bytes] = set()
    for chunk in _chunks(list(ids)):
        result = conn.execute(select(annonces.c.id).where(annonces.c.id.in_(chunk)))
        known.update(result.scalars())
    return known


def list_annonces(
    conn: Connection,
    *,
    limit: int = 100,
    offset: int = 0,
    origin: bytes | None = None,
    include_withdrawn: bool = True,
) -> list[StoredAnnonce]:
    """Current revisions, newest update first."""
    query = select(annonces).order_by(annonces.c.updated.desc(), annonces.c.id)
    if origin is not None:
        query = query.where(annonces.c.origin == origin)
    if not include_withdrawn:
        query = query.where(annonces.c.state != State.WITHDRAWN.value)
    return [stored_annonce(row) for row in conn.execute(query.limit(limit).offset(offset))]


def reconcile_items(conn: Connection, *, now: int | None = None) -> list[tuple[int, bytes]]:
    """The reconciled set: (updated, id) of every current revision, in order.

    With ``now``, the revisions expired by then are left out (the purge
    deletes them in its own time): the set holds what a receiver would accept.
    """
    query = select(annonces.c.updated, annonces.c.id).order_by(annonces.c.updated, annonces.c.id)
    if now is not None:
        query = query.where(annonces.c.expires > now)
    return [(updated, annonce_id) for updated, annonce_id in conn.execute(query)]


def purge_expired(conn: Connection, now: int) -> int:
    """Delete every revision (live or tombstone) whose expiry has passed."""
    search_index.unindex_where(conn, annonces.c.expires <= now)
    result = conn.execute(delete(annonces).where(annonces.c.expires <= now))
    if result.rowcount:
        touch(conn, ANNONCES)
    return result.rowcount or 0


def counts_by_origin(conn: Connection, *, now: int) -> dict[bytes, dict[str, int]]:
    """Per origin: how many live annonces and tombstones this node holds, unexpired."""
    query = (
        select(annonces.c.origin, annonces.c.state, func.count())
        .where(annonces.c.expires > now)  # expired ones wait for the purge: not counted
        .group_by(annonces.c.origin, annonces.c.state)
    )
    counts: dict[bytes, dict[str, int]] = {}
    for origin, state, count in conn.execute(query):
        per_origin = counts.setdefault(origin, {"live": 0, "withdrawn": 0})
        per_origin["withdrawn" if state == State.WITHDRAWN.value else "live"] += count
    return counts


def count_hidden(conn: Connection) -> int:
    """How many annonces held here the operator hid from residents."""
    return conn.execute(select(func.count()).select_from(annonces).where(annonces.c.hidden)).scalar_one()


@dataclass(frozen=True, slots=True)
class Figures:
    """What the About page says of the annonces residents can see here."""

    held: int
    own: int
    origins: int


def open_figures(conn: Connection, own_origin: bytes, *, now: int) -> Figures:
    live = (annonces.c.state == State.OPEN.value) & (annonces.c.expires > now) & ~annonces.c.hidden
    count = select(func.count()).select_from(annonces).where(live)
    held = conn.execute(count).scalar_one()
    own = conn.execute(count.where(annonces.c.origin == own_origin)).scalar_one()
    origins = conn.execute(
        select(func.count(func.distinct(annonces.c.origin))).where(live)
    ).scalar_one()
    return Figures(held, own, origins)
