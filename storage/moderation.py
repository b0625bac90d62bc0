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

from storage.annonces import StoredAnnonce, get_annonce
from storage.db import Database
from storage.schema import annonces, reports


async def hide_annonce(
    db: Database, origin: bytes, uid: bytes, *, reason: str, now: int
) -> StoredAnnonce | None:
    """Hide the annonce; None if this node holds no such annonce.

    Hiding it again replaces the reason and the time.
    """
    values = {"hidden": True, "hidden_reason": reason, "hidden_at": now}
    return await _set(db, origin, uid, values)


async def unhide_annonce(db: Database, origin: bytes, uid: bytes) -> StoredAnnonce | None:
    """Show the annonce again; None if this node holds no such annonce."""
    values = {"hidden": False, "hidden_reason": None, "hidden_at": None}
    return await _set(db, origin, uid, values)


async def _set(db: Database, origin: bytes, uid: bytes, values: dict) -> StoredAnnonce | None:
    async with db.engine.begin() as conn:
        result = await conn.execute(
            update(annonces)
            .where(and_(annonces.c.origin == origin, annonces.c.uid == uid))
            .values(**values)
        )
    if not result.rowcount:
        return None
    return await get_annonce(db, origin, uid)


async def open_reports(db: Database, origin: bytes, uid: bytes) -> int:
    """How many residents' reports of the annonce are still open."""
    query = select(func.count()).select_from(reports).where(
        reports.c.annonce_origin == origin,
        reports.c.annonce_uid == uid,
        reports.c.state == "open",
    )
    async with db.engine.connect() as conn:
        return (await conn.execute(query)).scalar_one()
