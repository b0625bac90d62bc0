"""The replay memory of signed requests, kept in the database so that it outlives a restart.

Each accepted request's (key id, nonce) is remembered, as its SHA-256, until
its signature's window has passed (``expires_at``); a second request with a
remembered pair is a replay. The federation API keeps the same memory in
process too (``protocol.httpsig.ReplayGuard``), which answers first; this
table is what a restarted node still knows.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import delete
from sqlalchemy.engine import Connection

from storage.db import upsert
from storage.schema import replay_nonces


def replay_key(key_id: str, nonce: str) -> bytes:
    return hashlib.sha256(f"{key_id}\n{nonce}".encode()).digest()


def remember(conn: Connection, key: bytes, *, expires_at: int) -> bool:
    """Remember an accepted request; False if it was remembered already (a replay)."""
    result = conn.execute(
        upsert(conn, replay_nonces).values(key=key, expires_at=expires_at).on_conflict_do_nothing()
    )
    return bool(result.rowcount)


def forget_expired(conn: Connection, now: int) -> int:
    result = conn.execute(delete(replay_nonces).where(replay_nonces.c.expires_at <= now))
    return result.rowcount or 0
