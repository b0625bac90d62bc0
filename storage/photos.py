"""Photos in the database: which annonce names which photo, and the files held.

``annonce_photos`` follows the annonces held: ``link_revisions`` replaces an
annonce's rows in the unit that stores its new revision (storage/annonces.py),
and the foreign key deletes them with the annonce. A photo that a stored
revision no longer names is *released* (``touch(conn, PHOTOS_RELEASED, sha256)``)
so that node/photos.py deletes its files once the unit has committed.

``photo_files`` says which files this node holds under DATA/photos and how
many bytes; the files themselves are node/photo_files.py's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import msgpack
from sqlalchemy import (
    and_,
    delete,
    exists,
    func,
    insert,
    inspect,
    select,
    tuple_,
    update,
)
from sqlalchemy.engine import Connection

from protocol.annonce import Photo, State
from protocol.envelope import SignedAnnonce
from storage.db import touch
from storage.schema import annonce_photos, annonces, photo_files

# Touched, with the hashes, when stored revisions stop naming photos.
PHOTOS_RELEASED = "photos_released"
QUERY_CHUNK = 500


def pack_photos(photos: Sequence[Photo]) -> bytes | None:
    """The annonces.photos column: the record's photos, or NULL for none."""
    if not photos:
        return None
    return msgpack.packb([[p.sha256, p.size, p.width, p.height, p.alt] for p in photos],
                         use_bin_type=True)  # fmt: skip


def unpack_photos(column: bytes | None) -> tuple[Photo, ...]:
    if not column:
        return ()
    return tuple(Photo(*item) for item in msgpack.unpackb(column, raw=False))


def link_revisions(conn: Connection, stored: Sequence[SignedAnnonce], *,
                   replaced: Sequence[tuple[bytes, bytes]]) -> None:  # fmt: skip
    """Replace the photo rows of the annonces whose new revisions were just stored;
    ``replaced``: those of them held before (the others have no rows yet)."""
    keys = list(replaced)
    before: set[bytes] = set()
    key = tuple_(annonce_photos.c.origin, annonce_photos.c.uid)
    for start in range(0, len(keys), QUERY_CHUNK):
        chunk = keys[start:start + QUERY_CHUNK]
        held = list(conn.execute(select(annonce_photos.c.sha256).where(key.in_(chunk))).scalars())
        if held:
            before.update(held)
            conn.execute(delete(annonce_photos).where(key.in_(chunk)))
    rows = [
        {"origin": s.annonce.origin, "uid": s.annonce.uid, "rank": rank,
         "sha256": photo.sha256, "size": photo.size}
        for s in stored if s.annonce.state is not State.WITHDRAWN
        for rank, photo in enumerate(s.annonce.photos)
    ]  # fmt: skip
    if rows:
        conn.execute(insert(annonce_photos), rows)
    released = before - {row["sha256"] for row in rows}
    if released:
        touch(conn, PHOTOS_RELEASED, *released)


@dataclass(frozen=True, slots=True)
class Naming:
    """A held annonce that names a photo, as the serving path needs it."""

    origin: bytes
    source: bytes | None
    size: int
    visible: bool


def namings(conn: Connection, sha256: bytes, *, now: int) -> list[Naming]:
    """Every held annonce naming ``sha256``; ``visible``: shown to residents now."""
    query = (
        select(annonces.c.origin, annonces.c.source, annonce_photos.c.size,
               annonces.c.hidden, annonces.c.state, annonces.c.expires)
        .join(annonces, and_(annonces.c.origin == annonce_photos.c.origin,
                             annonces.c.uid == annonce_photos.c.uid))
        .where(annonce_photos.c.sha256 == sha256)
    )  # fmt: skip
    return [
        Naming(row.origin, row.source, row.size,
               not row.hidden and row.state != State.WITHDRAWN.value and row.expires > now)
        for row in conn.execute(query)
    ]  # fmt: skip


@dataclass(frozen=True, slots=True)
class HeldFile:
    sha256: bytes
    own: bool
    size: int
    card_size: int
    stored_at: int
    viewed_at: int


def _held(row) -> HeldFile:
    return HeldFile(row.sha256, bool(row.own), row.size, row.card_size, row.stored_at,
                    row.viewed_at)  # fmt: skip


def get_file(conn: Connection, sha256: bytes) -> HeldFile | None:
    row = conn.execute(select(photo_files).where(photo_files.c.sha256 == sha256)).first()
    return _held(row) if row else None


def put_file(conn: Connection, held: HeldFile) -> bool:
    """Record a file written; False if it was held already (then nothing changes but
    an upload made own)."""
    found = get_file(conn, held.sha256)
    if found is not None:
        if held.own and not found.own:
            conn.execute(update(photo_files).where(photo_files.c.sha256 == held.sha256)
                         .values(own=True, stored_at=held.stored_at))  # fmt: skip
        return False
    conn.execute(insert(photo_files).values(
        sha256=held.sha256, own=held.own, size=held.size, card_size=held.card_size,
        stored_at=held.stored_at, viewed_at=held.viewed_at))  # fmt: skip
    return True


def mark_viewed(conn: Connection, sha256: bytes, at: int) -> None:
    conn.execute(update(photo_files).where(photo_files.c.sha256 == sha256)
                 .values(viewed_at=at))  # fmt: skip


def cache_bytes(conn: Connection) -> int:
    """The bytes of cached (not own) photos held: full and card."""
    held = func.coalesce(func.sum(photo_files.c.size + photo_files.c.card_size), 0)
    return int(conn.execute(select(held).where(~photo_files.c.own)).scalar_one())


def figures(conn: Connection) -> dict[str, int]:
    """Files and bytes held, own and cached: for the operator's status."""
    out = {"own_files": 0, "own_bytes": 0, "cached_files": 0, "cached_bytes": 0}
    query = select(photo_files.c.own, func.count(),
                   func.coalesce(func.sum(photo_files.c.size + photo_files.c.card_size), 0)
                   ).group_by(photo_files.c.own)  # fmt: skip
    for own, count, total in conn.execute(query):
        prefix = "own" if own else "cached"
        out[f"{prefix}_files"], out[f"{prefix}_bytes"] = int(count), int(total)
    return out


def _named():
    return exists().where(annonce_photos.c.sha256 == photo_files.c.sha256)


def take_unneeded(conn: Connection, *, now: int, upload_grace_s: int, cache_max_bytes: int,
                  cache_max_age_s: int) -> list[bytes]:  # fmt: skip
    """Forget the files no longer worth holding and return their hashes (to unlink):

    - files no held annonce names, except an own upload younger than ``upload_grace_s``
      (a draft being previewed names it);
    - cached files not viewed for ``cache_max_age_s``;
    - then the cached files least recently viewed, until the cache fits ``cache_max_bytes``.
    """
    unnamed = ~_named() & (~photo_files.c.own | (photo_files.c.stored_at <= now - upload_grace_s))
    stale = ~photo_files.c.own & (photo_files.c.viewed_at <= now - cache_max_age_s)
    gone = list(conn.execute(select(photo_files.c.sha256).where(unnamed | stale)).scalars())
    _forget(conn, gone)
    total = cache_bytes(conn)
    if total > cache_max_bytes:
        query = (select(photo_files.c.sha256, photo_files.c.size + photo_files.c.card_size)
                 .where(~photo_files.c.own)
                 .order_by(photo_files.c.viewed_at, photo_files.c.sha256))  # fmt: skip
        evicted = []
        for sha256, held in conn.execute(query):
            if total <= cache_max_bytes:
                break
            evicted.append(sha256)
            total -= held
        _forget(conn, evicted)
        gone += evicted
    return gone


def _forget(conn: Connection, hashes: Sequence[bytes]) -> None:
    for start in range(0, len(hashes), QUERY_CHUNK):
        chunk = list(hashes[start:start + QUERY_CHUNK])
        conn.execute(delete(photo_files).where(photo_files.c.sha256.in_(chunk)))


def forget_released(conn: Connection, hashes: Sequence[bytes]) -> list[bytes]:
    """Forget the files of ``hashes`` that no held annonce names any more; return them."""
    found = []
    for start in range(0, len(hashes), QUERY_CHUNK):
        chunk = list(hashes[start:start + QUERY_CHUNK])
        query = select(photo_files.c.sha256).where(photo_files.c.sha256.in_(chunk), ~_named())
        found += conn.execute(query).scalars()
    _forget(conn, found)
    return found


def own_hashes(conn: Connection) -> list[bytes]:
    """This node's own photos (for the backup; none in a database not migrated to 0018)."""
    if not inspect(conn).has_table(photo_files.name):
        return []
    query = select(photo_files.c.sha256).where(photo_files.c.own).order_by(photo_files.c.sha256)
    return list(conn.execute(query).scalars())


def all_files(conn: Connection) -> set[bytes]:
    return set(conn.execute(select(photo_files.c.sha256)).scalars())
