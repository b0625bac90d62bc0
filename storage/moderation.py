"""An operator's moderation of the annonces this node holds: hide, unhide.

A hide is on the annonce ``(origin, uid)``, not on one revision:
``storage.annonces.store_revisions`` never replaces the moderation columns,
so the newer revisions of a hidden annonce arrive hidden too. A hidden
annonce is held and reconciled as any other, but residents do not see it
(storage.search, the web pages) and peers are not served it
(``storage.annonces.FORWARDABLE``).
"""

from __future__ import annotations

from sqlalchemy import and_, func, select, update
from sqlalchemy.engine import Connection

from storage.annonces import ANNONCES, StoredAnnonce, get_annonce
from storage.db import touch
from storage.schema import annonces, reports


def hide_annonce(
    conn: Connection, origin: bytes, uid: bytes, *, reason: str, now: int
) -> StoredAnnonce | None:
    """Hide the annonce; None if this node holds no such annonce.

    Hiding it again replaces the reason and the time.
    """
    values = {"hidden": True, "hidden_reason": reason, "hidden_at": now}
    return _set(conn, origin, uid, values)


def unhide_annonce(conn: Connection, origin: bytes, uid: bytes) -> StoredAnnonce | None:
    """Show the annonce again; None if this node holds no such annonce."""
    values = {"hidden": False, "hidden_reason": None, "hidden_at": None}
    return _set(conn, origin, uid, values)


def _set(conn: Connection, origin: bytes, uid: bytes, values: dict) -> StoredAnnonce | None:
    result = conn.execute(
        update(annonces)
        .where(and_(annonces.c.origin == origin, annonces.c.uid == uid))
        .values(**values)
    )
    if not result.rowcount:
        return None
    touch(conn, ANNONCES)
    return get_annonce(conn, origin, uid)


def open_reports(conn: Connection, origin: bytes, uid: bytes) -> int:
    """How many residents' reports of the annonce are still open."""
    query = select(func.count()).select_from(reports).where(
        reports.c.annonce_origin == origin,
        reports.c.annonce_uid == uid,
        reports.c.state == "open",
    )
    return conn.execute(query).scalar_one()
