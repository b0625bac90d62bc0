"""What a member did lately, for the limits of new accounts (node/newcomers.py).

Read from what is there already: the annonces a member wrote
(``member_annonces``: when each was first published) and the conversations
they opened by answering an annonce (``conversations``, as the replier).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import Connection

from storage.schema import conversations, member_annonces


def annonces_since(conn: Connection, member_id: int, since: int) -> list[int]:
    """When the member published each annonce after ``since``, oldest first."""
    c = member_annonces.c
    query = select(c.created_at).where(c.member_id == member_id, c.created_at > since)
    return [row.created_at for row in conn.execute(query.order_by(c.created_at))]


def answers_since(conn: Connection, member_id: int, since: int) -> list[int]:
    """When the member answered each annonce (opened its conversation) after ``since``."""
    c = conversations.c
    query = select(c.created_at).where(c.replier_member_id == member_id, c.created_at > since)
    return [row.created_at for row in conn.execute(query.order_by(c.created_at))]
