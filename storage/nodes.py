"""The row that ties a database to one node key."""

from __future__ import annotations

from sqlalchemy import select, text
from sqlalchemy.engine import Connection

from protocol.identity import node_id_text
from storage.errors import WrongNodeError
from storage.schema import node


def claim_database(conn: Connection, node_id: bytes, name: str, now: int) -> None:
    """Record this node as the database's owner, or refuse another node's database."""
    owner = conn.execute(select(node.c.node_id)).scalar_one_or_none()
    if owner is None:
        conn.execute(node.insert().values(node_id=node_id, name=name, created_at=now))
    elif owner != node_id:
        raise WrongNodeError(
            f"this database belongs to node {node_id_text(owner)}, "
            f"not to this node's key {node_id_text(node_id)}"
        )


def ping(conn: Connection) -> None:
    """One round trip to the database: it answers."""
    conn.execute(text("SELECT 1"))
