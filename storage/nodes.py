"""The row that ties a database to one node key."""

from __future__ import annotations

from sqlalchemy import select

from protocol.identity import node_id_text
from storage.db import Database
from storage.errors import WrongNodeError
from storage.schema import node


async def claim_database(db: Database, node_id: bytes, name: str, now: int) -> None:
    """Record this node as the database's owner, or refuse another node's database."""
    async with db.engine.begin() as conn:
        owner = (await conn.execute(select(node.c.node_id))).scalar_one_or_none()
        if owner is None:
            await conn.execute(node.insert().values(node_id=node_id, name=name, created_at=now))
        elif owner != node_id:
            raise WrongNodeError(
                f"this database belongs to node {node_id_text(owner)}, "
                f"not to this node's key {node_id_text(node_id)}"
            )
