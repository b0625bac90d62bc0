"""Reads for the printed sheet: the annonces of a short code, the newest open ones of communes.

``by_code`` goes through the index of ``short_codes`` (storage/short_codes.py
writes it); ``newest_open`` through ``ix_annonces_commune_created``. Both
are bounded by the caller's limit, and fit the event loop (storage/db.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, or_, select
from sqlalchemy.engine import Connection

from protocol.annonce import Annonce, State
from storage.annonces import StoredAnnonce, stored_annonce
from storage.schema import annonces, short_codes


def by_code(conn: Connection, code: str, *, limit: int) -> list[StoredAnnonce]:
    """The annonces held whose short code is ``code`` (hidden ones too: the caller decides)."""
    query = (
        select(annonces)
        .join(short_codes, and_(short_codes.c.origin == annonces.c.origin,
                                short_codes.c.uid == annonces.c.uid))  # fmt: skip
        .where(short_codes.c.code == code)
        .order_by(annonces.c.created.desc(), annonces.c.id)
        .limit(limit)
    )
    return [stored_annonce(row) for row in conn.execute(query)]


def newest_open(conn: Connection, communes: Sequence[str], *, now: int, limit: int) -> list[Annonce]:
    """The newest annonces residents may answer whose commune is one of ``communes``.

    Open, unexpired, not hidden, and not a sortie whose date has passed. One
    walk of ``ix_annonces_commune_created`` per commune, newest first, each
    stopping at ``limit``: a ``commune IN (…)`` with ``ORDER BY created``
    made SQLite read every annonce of the communes and sort them (30 ms for
    10,000 annonces in bench/sheet.py, on the event loop), where these walks
    read at most ``limit`` rows each.
    """
    found = []
    for commune in dict.fromkeys(communes):
        query = (
            select(annonces)
            .where(
                annonces.c.commune == commune,
                annonces.c.state == State.OPEN.value,
                ~annonces.c.hidden,
                annonces.c.expires > now,
                or_(annonces.c.sortie_at.is_(None), annonces.c.sortie_at > now),
            )
            .order_by(annonces.c.created.desc())
            .limit(limit)
        )
        found.extend(stored_annonce(row).annonce for row in conn.execute(query))
    found.sort(key=lambda a: (-a.created, a.origin, a.uid))
    return found[:limit]
