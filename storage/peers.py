"""Peers this node federates with, and origins it refuses."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, delete, select, update
from sqlalchemy.exc import IntegrityError

from storage import search
from storage.db import Database
from storage.errors import Conflict, NotFound
from storage.schema import annonces, blocked_origins, peers

# A peer's states: reachable, or failing for a while (its circuit is open).
ACTIVE = "active"
UNAVAILABLE = "unavailable"
MAX_ERROR_CHARS = 500


@dataclass(frozen=True, slots=True)
class Peer:
    node_id: bytes
    url: str
    name: str
    added_at: int
    state: str
    last_contact: int | None
    last_error: str | None
    failures: int
    next_try: int | None = None
    last_sync: int | None = None


@dataclass(frozen=True, slots=True)
class BlockedOrigin:
    origin: bytes
    reason: str
    blocked_at: int


def _peer(row) -> Peer:
    return Peer(
        row.node_id, row.url, row.name, row.added_at, row.state,
        row.last_contact, row.last_error, row.failures, row.next_try, row.last_sync,
    )  # fmt: skip


async def add_peer(db: Database, node_id: bytes, url: str, name: str, now: int) -> Peer:
    try:
        async with db.engine.begin() as conn:
            await conn.execute(
                peers.insert().values(node_id=node_id, url=url, name=name, added_at=now)
            )
    except IntegrityError as exc:
        raise Conflict("this node is already a peer") from exc
    peer = await get_peer(db, node_id)
    assert peer is not None
    return peer


async def get_peer(db: Database, node_id: bytes) -> Peer | None:
    async with db.engine.connect() as conn:
        row = (await conn.execute(select(peers).where(peers.c.node_id == node_id))).first()
    return _peer(row) if row else None


async def list_peers(db: Database) -> list[Peer]:
    async with db.engine.connect() as conn:
        result = await conn.execute(select(peers).order_by(peers.c.added_at, peers.c.node_id))
        return [_peer(row) for row in result]


async def remove_peer(db: Database, node_id: bytes) -> None:
    async with db.engine.begin() as conn:
        result = await conn.execute(delete(peers).where(peers.c.node_id == node_id))
    if not result.rowcount:
        raise NotFound("no such peer")


async def record_contact(db: Database, node_id: bytes, now: int) -> None:
    """A request to or from the peer succeeded."""
    async with db.engine.begin() as conn:
        await conn.execute(
            update(peers)
            .where(peers.c.node_id == node_id)
            .values(last_contact=now, last_error=None, failures=0, state=ACTIVE, next_try=None)
        )


async def record_failure(
    db: Database, node_id: bytes, *, error: str, next_try: int, unavailable_after: int
) -> None:
    """A request to the peer failed: count it, and hold off until ``next_try``.

    The peer turns unavailable once it has failed ``unavailable_after`` times
    in a row; ``record_contact`` makes it active again.
    """
    failures = peers.c.failures + 1
    async with db.engine.begin() as conn:
        await conn.execute(
            update(peers)
            .where(peers.c.node_id == node_id)
            .values(
                failures=failures,
                last_error=f"{error}"[:MAX_ERROR_CHARS],
                next_try=next_try,
                state=case((failures >= unavailable_after, UNAVAILABLE), else_=peers.c.state),
            )
        )


async def record_sync(db: Database, node_id: bytes, now: int) -> None:
    """An anti-entropy pass with the peer completed."""
    async with db.engine.begin() as conn:
        await conn.execute(update(peers).where(peers.c.node_id == node_id).values(last_sync=now))


async def block_origin(db: Database, origin: bytes, reason: str, now: int) -> int:
    """Refuse an origin from now on and drop what is held of it; return how many."""
    async with db.engine.begin() as conn:
        exists = (
            await conn.execute(
                select(blocked_origins.c.origin).where(blocked_origins.c.origin == origin)
            )
        ).first()
        if exists:
            raise Conflict("this origin is already blocked")
        await conn.execute(
            blocked_origins.insert().values(origin=origin, reason=reason, blocked_at=now)
        )
        await search.unindex_where(conn, annonces.c.origin == origin)
        dropped = await conn.execute(delete(annonces).where(annonces.c.origin == origin))
    return dropped.rowcount or 0


async def unblock_origin(db: Database, origin: bytes) -> None:
    async with db.engine.begin() as conn:
        result = await conn.execute(
            delete(blocked_origins).where(blocked_origins.c.origin == origin)
        )
    if not result.rowcount:
        raise NotFound("this origin is not blocked")


async def list_blocked(db: Database) -> list[BlockedOrigin]:
    async with db.engine.connect() as conn:
        result = await conn.execute(select(blocked_origins).order_by(blocked_origins.c.blocked_at))
        return [BlockedOrigin(r.origin, r.reason, r.blocked_at) for r in result]
