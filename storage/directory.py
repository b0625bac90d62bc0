"""The directory of nodes this node knows: their signed documents, and key successions.

``nodes`` holds the newest signed node document of each node (the exact JSON
text and signature, so it can be served again unchanged), with what pages
and the courier read of it (name, URL, area, recovery key). ``successions``
holds, per old node id, the succession that stands. ``refused_nodes`` are the
nodes the operator refuses to take point-to-point requests from.

What is newer and what stands is decided by protocol.directory and
protocol.succession; these functions store and read. A write that changes
the directory says so (topic DIRECTORY), so that the names cached for pages
are refreshed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import and_, delete, exists, func, or_, select, update
from sqlalchemy.engine import Connection

from protocol.directory import NODE, SUCCESSION
from storage.db import touch, upsert
from storage.schema import (
    annonces,
    conversations,
    nodes,
    outbox_items,
    peers,
    refused_nodes,
    successions,
)

# The topic of changes to the directory (storage.db.touch); keys: node ids.
DIRECTORY = "directory"
# A peer brought annonces of nodes without a document here (key: that peer): its next
# anti-entropy pass compares directories with it (node.sync ``compare_directories``).
UNDOCUMENTED = "undocumented"
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class KnownNode:
    node_id: bytes
    name: str
    url: str
    area: str
    issued: int
    recovery: bytes | None
    document: str
    signature: str
    record_id: bytes
    url_checked: str | None = None  # the URL found to serve this node's own key


@dataclass(frozen=True, slots=True)
class HeldSuccession:
    old: bytes
    new: bytes | None
    issued: int
    by: str
    envelope: bytes
    record_id: bytes


def _known(row) -> KnownNode:
    return KnownNode(row.node_id, row.name, row.url, row.area, row.issued, row.recovery,
                     row.document, row.signature, row.record_id, row.url_checked)  # fmt: skip


# --- Node documents -----------------------------------------------------------------


def get_node(conn: Connection, node_id: bytes) -> KnownNode | None:
    row = conn.execute(select(nodes).where(nodes.c.node_id == node_id)).first()
    return _known(row) if row else None


def note_undocumented(conn: Connection, origins: Sequence[bytes], source: bytes | None) -> bool:
    """Whether some of ``origins`` have no document here; if so, say it of ``source``
    (topic UNDOCUMENTED), whose directory has them, or had them, most likely."""
    wanted = set(origins)
    if source is None or not wanted:
        return False
    held = {row.node_id for start in range(0, len(wanted), _CHUNK)
            for row in conn.execute(select(nodes.c.node_id).where(
                nodes.c.node_id.in_(sorted(wanted)[start : start + _CHUNK])))}  # fmt: skip
    if wanted <= held:
        return False
    touch(conn, UNDOCUMENTED, source)
    return True


def nodes_by_id(conn: Connection, node_ids: Sequence[bytes]) -> dict[bytes, KnownNode]:
    found: dict[bytes, KnownNode] = {}
    ids = list(node_ids)
    for start in range(0, len(ids), _CHUNK):
        query = select(nodes).where(nodes.c.node_id.in_(ids[start : start + _CHUNK]))
        found.update((row.node_id, _known(row)) for row in conn.execute(query))
    return found


def put_node(conn: Connection, known: KnownNode, *, now: int, source: bytes | None) -> None:
    """Store a node's document (newer than the one held: the caller checked)."""
    values = {"name": known.name, "url": known.url, "area": known.area, "issued": known.issued,
              "document": known.document, "signature": known.signature,
              "record_id": known.record_id, "received_at": now, "source": source}  # fmt: skip
    held = conn.execute(select(nodes.c.recovery, nodes.c.url, nodes.c.url_checked)
                        .where(nodes.c.node_id == known.node_id)).first()  # fmt: skip
    recovery = held.recovery if held is not None and held.recovery else known.recovery
    checked = held.url_checked if held is not None and held.url == known.url else None
    statement = upsert(conn, nodes).values(node_id=known.node_id, recovery=recovery,
                                            url_checked=checked, **values)  # fmt: skip
    conn.execute(statement.on_conflict_do_update(
        index_elements=["node_id"], set_={**values, "recovery": recovery, "url_checked": checked},
    ))  # fmt: skip
    touch(conn, DIRECTORY, known.node_id)


def mark_url_checked(conn: Connection, node_id: bytes, url: str) -> None:
    """The node's URL served the node's own key: messages may go there."""
    conn.execute(update(nodes).where(nodes.c.node_id == node_id, nodes.c.url == url)
                 .values(url_checked=url))  # fmt: skip


def names(conn: Connection) -> dict[bytes, str]:
    """The association name of every node known, by node id."""
    return dict(conn.execute(select(nodes.c.node_id, nodes.c.name)).all())


def list_nodes(conn: Connection) -> list[KnownNode]:
    return [_known(row) for row in conn.execute(select(nodes).order_by(nodes.c.name))]


def count_nodes(conn: Connection) -> int:
    return conn.execute(select(func.count()).select_from(nodes)).scalar_one()


# --- Successions ----------------------------------------------------------------------


def get_succession(conn: Connection, old: bytes) -> HeldSuccession | None:
    row = conn.execute(select(successions).where(successions.c.old == old)).first()
    if row is None:
        return None
    return HeldSuccession(row.old, row.new, row.issued, row.by, row.envelope, row.record_id)


def put_succession(conn: Connection, held: HeldSuccession, *, now: int) -> None:
    values = {"new": held.new, "issued": held.issued, "by": held.by, "envelope": held.envelope,
              "record_id": held.record_id, "received_at": now}  # fmt: skip
    statement = upsert(conn, successions).values(old=held.old, **values)
    conn.execute(statement.on_conflict_do_update(index_elements=["old"], set_=values))
    touch(conn, DIRECTORY, held.old)


def successions_of(conn: Connection, olds: Sequence[bytes]) -> dict[bytes, HeldSuccession]:
    found = {}
    ids = list(olds)
    for start in range(0, len(ids), _CHUNK):
        rows = conn.execute(select(successions).where(successions.c.old.in_(ids[start:start + _CHUNK])))
        for row in rows:
            found[row.old] = HeldSuccession(row.old, row.new, row.issued, row.by, row.envelope,
                                            row.record_id)  # fmt: skip
    return found


def all_successions(conn: Connection) -> list[HeldSuccession]:
    return [HeldSuccession(r.old, r.new, r.issued, r.by, r.envelope, r.record_id)
            for r in conn.execute(select(successions))]  # fmt: skip


# --- The digest and fetch -------------------------------------------------------------


def entries(conn: Connection) -> list[tuple[str, bytes, bytes]]:
    """(kind, node id, record id) of every record held, for the digest."""
    found = [(NODE, row.node_id, row.record_id)
             for row in conn.execute(select(nodes.c.node_id, nodes.c.record_id))]  # fmt: skip
    found += [(SUCCESSION, row.old, row.record_id)
              for row in conn.execute(select(successions.c.old, successions.c.record_id))]  # fmt: skip
    return found


# --- Refusals ---------------------------------------------------------------------------


def refuse_node(conn: Connection, node_id: bytes, reason: str, now: int) -> None:
    statement = upsert(conn, refused_nodes).values(node_id=node_id, reason=reason, refused_at=now)
    conn.execute(statement.on_conflict_do_update(
        index_elements=["node_id"], set_={"reason": reason, "refused_at": now}))  # fmt: skip
    touch(conn, DIRECTORY, node_id)


def accept_node(conn: Connection, node_id: bytes) -> bool:
    result = conn.execute(delete(refused_nodes).where(refused_nodes.c.node_id == node_id))
    touch(conn, DIRECTORY, node_id)
    return bool(result.rowcount)


def is_refused(conn: Connection, node_id: bytes) -> bool:
    query = select(refused_nodes.c.node_id).where(refused_nodes.c.node_id == node_id)
    return conn.execute(query).first() is not None


def refused(conn: Connection) -> dict[bytes, str]:
    return dict(conn.execute(select(refused_nodes.c.node_id, refused_nodes.c.reason)).all())


# --- Forgetting ---------------------------------------------------------------------------


def forget_idle(conn: Connection, own: bytes, *, now: int, older_than: int,
                talked_since: int) -> int:  # fmt: skip
    """Drop the documents of nodes with no live annonce here, not peers, not talked to lately.

    Only documents received before ``older_than`` go, so that a node's
    document arriving just before its annonces is kept.
    """
    live = exists().where(annonces.c.origin == nodes.c.node_id, annonces.c.expires > now)
    peer = exists().where(peers.c.node_id == nodes.c.node_id)
    queued = exists().where(outbox_items.c.destination == nodes.c.node_id)
    talked = exists().where(
        or_(conversations.c.author_node == nodes.c.node_id,
            conversations.c.replier_node == nodes.c.node_id),
        conversations.c.updated_at > talked_since,
    )  # fmt: skip
    result = conn.execute(delete(nodes).where(and_(
        nodes.c.node_id != own, nodes.c.received_at < older_than,
        ~live, ~peer, ~queued, ~talked,
    )))  # fmt: skip
    if result.rowcount:
        touch(conn, DIRECTORY)
    return result.rowcount or 0
