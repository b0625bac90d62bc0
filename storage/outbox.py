"""The durable per-peer outbox: what this node has still to offer each peer.

Gossip (node/gossip.py) enqueues the ids of newly accepted revisions for
every peer but the one they came from and their origin. ``enqueue`` is one
executemany of ``INSERT ... SELECT`` over the peers table per accepted batch,
so a peer added or removed meanwhile is either fully served or not at all.

A courier reads a peer's oldest rows (``next_batch``), offers them, and
deletes them once the peer has answered (``remove``); when delivery fails the
rows stay and count a try (``count_try``). Rows live in the database, so they
survive a restart: they *are* the queue.

Back-off is kept per peer, not per row, since a peer that is down fails every
row alike: ``storage.peers.record_failure`` stores when to try again and
``due_peers`` lists the peers with work whose time has come.

A row whose annonce id is no longer a current revision (superseded, expired
and purged, or of an origin blocked since), or is one this node does not
forward (hidden by its operator, ``storage.annonces.FORWARDABLE``), is dead:
``next_batch`` drops it unsent, and ``drop_dead`` sweeps them all. Unhiding
an annonce queues it again (node/gossip.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import (
    BigInteger,
    LargeBinary,
    and_,
    bindparam,
    cast,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from storage.annonces import FORWARDABLE
from storage.db import Database
from storage.schema import annonces, outbox, peers

# Bound parameters per statement stay well below SQLite's and asyncpg's limits.
_CHUNK = 500
# Never equal to a 32-byte node id: stands for "no source" in enqueue.
_NO_NODE = b""


def _chunks(items: Sequence, size: int = _CHUNK):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _build_enqueue_statement(dialect: str):
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    each_peer = select(
        peers.c.node_id,
        cast(bindparam("annonce_id"), LargeBinary),
        cast(bindparam("enqueued_at"), BigInteger),
    ).where(
        peers.c.node_id != cast(bindparam("source"), LargeBinary),
        peers.c.node_id != cast(bindparam("origin"), LargeBinary),
    )
    return (
        insert(outbox)
        .from_select(["peer_id", "annonce_id", "enqueued_at"], each_peer)
        .on_conflict_do_nothing()
    )


_ENQUEUE_STATEMENTS = {name: _build_enqueue_statement(name) for name in ("sqlite", "postgresql")}


async def enqueue(
    db: Database,
    revisions: Sequence[tuple[bytes, bytes]],
    *,
    source: bytes | None,
    now: int,
) -> None:
    """Queue each ``(annonce id, origin)`` for every peer but ``source`` and the origin."""
    if not revisions:
        return
    rows = [
        {"annonce_id": annonce_id, "enqueued_at": now,
         "source": source or _NO_NODE, "origin": origin}
        for annonce_id, origin in revisions
    ]  # fmt: skip
    async with db.engine.begin() as conn:
        await conn.execute(_ENQUEUE_STATEMENTS[db.dialect], rows)


async def next_batch(db: Database, peer_id: bytes, limit: int) -> list[bytes]:
    """The ids of the peer's oldest live rows, at most ``limit``; dead rows are dropped."""
    query = (
        select(outbox.c.annonce_id, annonces.c.id)
        .select_from(
            outbox.outerjoin(annonces, and_(annonces.c.id == outbox.c.annonce_id, FORWARDABLE))
        )
        .where(outbox.c.peer_id == peer_id)
        .order_by(outbox.c.enqueued_at, outbox.c.annonce_id)
        .limit(limit)
    )
    while True:
        async with db.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        live = [queued for queued, held in rows if held is not None]
        dead = [queued for queued, held in rows if held is None]
        if dead:
            await remove(db, peer_id, dead)
        # A batch made only of dead rows hides live ones behind it: read on.
        if live or not dead or len(rows) < limit:
            return live


async def remove(db: Database, peer_id: bytes, ids: Sequence[bytes]) -> None:
    """Forget rows the peer has been offered."""
    async with db.engine.begin() as conn:
        for chunk in _chunks(list(ids)):
            await conn.execute(
                delete(outbox).where(outbox.c.peer_id == peer_id, outbox.c.annonce_id.in_(chunk))
            )


async def count_try(db: Database, peer_id: bytes, ids: Sequence[bytes]) -> None:
    """Note that offering these rows to the peer failed once more."""
    async with db.engine.begin() as conn:
        for chunk in _chunks(list(ids)):
            await conn.execute(
                update(outbox)
                .where(outbox.c.peer_id == peer_id, outbox.c.annonce_id.in_(chunk))
                .values(tries=outbox.c.tries + 1)
            )


async def pending_counts(db: Database) -> dict[bytes, int]:
    """Per peer, how many rows wait in its outbox (dead ones included)."""
    query = select(outbox.c.peer_id, func.count()).group_by(outbox.c.peer_id)
    async with db.engine.connect() as conn:
        return {peer_id: count for peer_id, count in await conn.execute(query)}


def _has_work():
    return select(outbox.c.peer_id).where(outbox.c.peer_id == peers.c.node_id).exists()


async def waiting_peers(db: Database) -> list[tuple[bytes, int | None]]:
    """``(peer id, end of its back-off or None)`` of every peer with rows waiting."""
    query = select(peers.c.node_id, peers.c.next_try).where(_has_work())
    async with db.engine.connect() as conn:
        return [(node_id, next_try) for node_id, next_try in await conn.execute(query)]


async def due_peers(db: Database, now: int) -> list[bytes]:
    """Peers with rows waiting whose back-off, if any, has run out."""
    query = select(peers.c.node_id).where(
        (peers.c.next_try.is_(None)) | (peers.c.next_try <= now), _has_work()
    )
    async with db.engine.connect() as conn:
        return list((await conn.execute(query)).scalars())


async def next_due(db: Database) -> int | None:
    """The earliest back-off end among peers with rows waiting, if any."""
    query = select(func.min(peers.c.next_try)).where(peers.c.next_try.is_not(None), _has_work())
    async with db.engine.connect() as conn:
        return (await conn.execute(query)).scalar_one_or_none()


async def drop_dead(db: Database) -> int:
    """Delete every row whose annonce id is no longer a current revision, or is hidden."""
    held = select(annonces.c.id).where(annonces.c.id == outbox.c.annonce_id, FORWARDABLE).exists()
    async with db.engine.begin() as conn:
        result = await conn.execute(delete(outbox).where(~held))
    return result.rowcount or 0
