"""Several processes on one PostgreSQL database: one leader, and changes heard by all.

A node with ``workers`` > 1 runs that many web processes (node/workers.py).
Two things must then hold across processes, and PostgreSQL gives both:

- **One leader.** Exactly one process runs the background tasks. Each
  process keeps a connection of its own (``Leadership``) and asks for a
  session advisory lock on it (``pg_try_advisory_lock``); the one that gets
  it leads. The lock belongs to the session: when the leader's process dies,
  even by SIGKILL, its connection closes and the lock is free for the next
  ask (within a second). A leader whose connection fails stops leading at
  once (``holds`` is false), before another may take over.
- **Changes heard everywhere.** A unit of work's changes (storage.db
  ``Changes``) are published in its own transaction with ``pg_notify``, so
  they reach the other processes only if it commits; each process listens on
  a connection of its own (``ChangeChannel``) and hands what the others
  changed to its listeners, as if it had written it. A payload too large for
  NOTIFY carries its topics without their keys (listeners then refresh the
  whole topic). When the listening connection is lost, it is opened again,
  and the listeners hear that every topic seen so far may have changed.

``workers(conn)`` lists the processes and which one leads, for ``troc status``.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
from collections.abc import Callable

import asyncpg
import msgpack
from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url

log = logging.getLogger("troc.storage")

LEADER_LOCK = 0x74726F63  # "troc": one session advisory lock per database
CHANNEL = "troc_changes"
NOTIFY_MAX_BYTES = 7900  # PostgreSQL refuses a payload of 8000 bytes or more
APPLICATION_NAME = "troc worker {index} {pid}"  # the OS pid: whom to look at
CONNECT_TIMEOUT_S = 5.0
PROBE_TIMEOUT_S = 2.0


def dsn_of(url: str) -> str:
    """The libpq address of a SQLAlchemy PostgreSQL URL, for asyncpg's own connections."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


# --- Changes across processes -------------------------------------------------------------


def encode_changes(origin: bytes, topics: dict[str, set]) -> str:
    """The NOTIFY payload of one unit's changes; without keys if they would not fit."""
    try:
        packed = msgpack.packb({"o": origin, "t": {t: sorted(k, key=repr)
                                                   for t, k in topics.items()}})  # fmt: skip
    except (TypeError, ValueError):  # a key msgpack cannot carry: the topics say enough
        packed = b""
    payload = base64.b64encode(packed).decode("ascii")
    if packed and len(payload) <= NOTIFY_MAX_BYTES:
        return payload
    packed = msgpack.packb({"o": origin, "t": {t: None for t in topics}})
    return base64.b64encode(packed).decode("ascii")


def decode_changes(payload: str) -> tuple[bytes, dict[str, set | None]]:
    """(origin, topics with their keys, or None: any key). ValueError if malformed."""
    try:
        value = msgpack.unpackb(base64.b64decode(payload, validate=True), use_list=False)
        origin, topics = value["o"], value["t"]
        return origin, {str(t): (None if k is None else set(k)) for t, k in topics.items()}
    except (ValueError, KeyError, TypeError, AttributeError, msgpack.ExtraData,
            msgpack.FormatError, msgpack.StackError) as exc:  # fmt: skip
        raise ValueError(f"not a change notice: {exc}") from None


def publish_changes(conn: Connection, payload: str) -> None:
    """In the unit that made them: the changes go out when, and only if, it commits."""
    conn.execute(text("SELECT pg_notify(:channel, :payload)"),
                 {"channel": CHANNEL, "payload": payload})  # fmt: skip


class ChangeChannel:
    """Listens for the other processes' changes and hands them to ``deliver``."""

    def __init__(self, dsn: str, origin: bytes,
                 deliver: Callable[[dict[str, set | None]], None]) -> None:  # fmt: skip
        self.dsn, self.origin, self.deliver = dsn, origin, deliver
        self._conn: asyncpg.Connection | None = None
        self._task: asyncio.Task | None = None
        self._lost = asyncio.Event()

    def _heard(self, _conn, _pid, _channel, payload: str) -> None:
        try:
            origin, topics = decode_changes(payload)
        except ValueError as exc:
            log.warning("change notice ignored", extra={"error": str(exc)[:100]})
            return
        if origin != self.origin:
            self.deliver(topics)

    def _terminated(self, _conn) -> None:
        self._lost.set()

    async def _open(self) -> None:
        self._conn = await asyncpg.connect(self.dsn, timeout=CONNECT_TIMEOUT_S)
        self._conn.add_termination_listener(self._terminated)
        await self._conn.add_listener(CHANNEL, self._heard)

    async def start(self) -> None:
        await self._open()
        self._task = asyncio.create_task(self._keep_open())

    async def _keep_open(self) -> None:
        while True:
            await self._lost.wait()
            log.warning("lost the change channel; opening it again")
            while True:
                self._lost.clear()
                try:
                    await self._open()
                    break
                except (OSError, asyncpg.PostgresError, TimeoutError):
                    await asyncio.sleep(1.0)
            self.deliver({})  # anything may have changed while nobody listened

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._conn is not None and not self._conn.is_closed():
            await self._conn.close(timeout=PROBE_TIMEOUT_S)


# --- The leader ---------------------------------------------------------------------------


class Leadership:
    """One process's claim on the leader lock, on a connection of its own."""

    def __init__(self, dsn: str, index: int) -> None:
        self.dsn, self.index = dsn, index
        self._conn: asyncpg.Connection | None = None
        self.leading = False

    async def try_take(self) -> bool:
        """Whether this process leads now (it may have just taken the lock)."""
        try:
            if self._conn is None or self._conn.is_closed():
                self.leading = False
                self._conn = await asyncpg.connect(
                    self.dsn, timeout=CONNECT_TIMEOUT_S, server_settings={
                        "application_name": APPLICATION_NAME.format(index=self.index,
                                                                    pid=os.getpid())})  # fmt: skip
            if not self.leading:
                self.leading = bool(await self._conn.fetchval(
                    "SELECT pg_try_advisory_lock($1)", LEADER_LOCK, timeout=PROBE_TIMEOUT_S))  # fmt: skip
            else:
                await self._conn.fetchval("SELECT 1", timeout=PROBE_TIMEOUT_S)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
            await self._drop()
        return self.leading

    async def _drop(self) -> None:
        self.leading = False
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.terminate()

    async def close(self) -> None:
        """Give the lock up (closing the session does)."""
        self.leading = False
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            try:
                await conn.close(timeout=PROBE_TIMEOUT_S)
            except (OSError, asyncpg.PostgresError, TimeoutError):
                conn.terminate()


def workers(conn: Connection) -> list[dict]:
    """The node's worker processes connected to its database, and which one leads
    (none on SQLite: one process serves it)."""
    if conn.dialect.name != "postgresql":
        return []
    rows = conn.execute(text(
        "SELECT a.application_name, a.backend_start, l.pid IS NOT NULL AS leader "
        "FROM pg_stat_activity a LEFT JOIN pg_locks l ON l.pid = a.pid "
        "AND l.locktype = 'advisory' AND l.granted AND l.classid = 0 AND l.objid = :key "
        "WHERE a.datname = current_database() AND a.application_name LIKE 'troc worker %' "
        "ORDER BY a.application_name"), {"key": LEADER_LOCK})  # fmt: skip
    found = []
    for name, started, leader in rows:
        parts = name.split()
        if len(parts) == 4 and parts[2].isdigit() and parts[3].isdigit():
            found.append({"worker": int(parts[2]), "pid": int(parts[3]), "leader": bool(leader),
                          "connected_at": int(started.timestamp())})  # fmt: skip
    return found


def instance_id() -> bytes:
    """This process's id in change notices (its own changes are not heard twice)."""
    return os.getpid().to_bytes(4, "big") + os.urandom(8)
