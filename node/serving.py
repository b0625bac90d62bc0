"""How the node's sites serve connections: bounded reads, bounded connections,
one ``Server`` header.

aiohttp waits as long as a client takes to send a request's head or body,
and has no limit of its own on how many connections it keeps: 1,100
connections sending half a header each exhausted a node's file descriptors.
So each connection is a ``GuardedRequestHandler`` (aiohttp's request handler
with deadlines), made by a ``ConnectionGuard`` that counts them:

- a new connection, and a kept-alive one from the first byte of its next
  request, has ``header_timeout_s`` to send the request line and headers;
- a body must be complete within ``body_timeout_s`` of the request's first
  byte, with no pause longer than ``header_timeout_s``; once it is, the
  handler takes the time it needs (its own timeouts bound it);
- an idle connection is closed after ``keepalive_timeout_s``;
- at ``max_connections``, a new connection closes the oldest one that is not
  being answered (waiting for a head, or idle); when every one is being
  answered, the new one gets a 503 and is closed. The listening socket keeps
  accepting: nothing stops it for good.

Closed connections are counted in two summarised log lines (node.logs), never
one line each. The sites are ``GuardedTCPSite`` and ``GuardedUnixSite``; every
answer they send says ``Server: troc``, without versions, set in one place
(``finish_response``). When the node stops, ``drain`` gives the requests being
answered a moment, then cancels them.

The guard reads one attribute of aiohttp's handler, ``_current_request`` (the
request being answered; aiohttp 3.9 and later), to tell a head still coming
from a request being answered.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from dataclasses import dataclass

from aiohttp import hdrs, web
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler

from node.logs import Summarised
from node.settings import Settings

log = logging.getLogger("troc.node")

SERVER_HEADER = "troc"
LISTEN_BACKLOG = 128
DRAIN_POLL_S = 0.05
# File descriptors kept for everything else: database, peers (the peer client
# opens at most 100), admin socket, log, libraries. Besides, asyncio accepts
# up to LISTEN_BACKLOG connections in one go, and the sockets closed to make
# room for them are released only after it: as many again may be open.
RESERVED_FDS = 256
REFUSAL = (
    f"HTTP/1.1 503 Service Unavailable\r\nServer: {SERVER_HEADER}\r\nRetry-After: 1\r\n"
    "Content-Length: 0\r\nConnection: close\r\n\r\n"
).encode("ascii")


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    max_connections: int
    header_timeout_s: float
    body_timeout_s: float
    keepalive_timeout_s: float

    @classmethod
    def from_settings(cls, settings: Settings, *, max_connections: int | None = None):
        return cls(max_connections or settings.max_connections, settings.header_timeout_s,
                   settings.body_timeout_s, settings.keepalive_timeout_s)  # fmt: skip


class ConnectionGuard:
    """The connections of one site: made, counted, closed when they overstay."""

    def __init__(self, limits: ConnectionLimits, logger: logging.Logger = log) -> None:
        self.limits = limits
        self._open: dict[GuardedRequestHandler, None] = {}  # oldest first
        self.slow = Summarised(logger, "slow connections closed")
        self.crowded = Summarised(logger, "connection limit reached", level=logging.WARNING)

    def protocol_factory(self, server: web.Server):
        """What ``loop.create_server`` calls for each accepted connection."""
        loop = asyncio.get_running_loop()

        def make() -> asyncio.Protocol:
            if len(self._open) >= self.limits.max_connections and not self._make_room():
                self.crowded.note("refused")
                return RefusedConnection()
            return GuardedRequestHandler(server, loop=loop, guard=self,
                                         keepalive_timeout=self.limits.keepalive_timeout_s,
                                         lingering_time=self.limits.header_timeout_s)  # fmt: skip

        return make

    def _make_room(self) -> bool:
        for handler in self._open:
            if not handler.answering:
                self.closed(handler)
                handler.force_close()
                self.crowded.note("closed_waiting")
                return True
        return False

    def opened(self, handler: GuardedRequestHandler) -> None:
        self._open[handler] = None

    def closed(self, handler: GuardedRequestHandler) -> None:
        self._open.pop(handler, None)

    async def drain(self, grace_s: float) -> None:
        """Give the requests being answered ``grace_s`` to end, then cancel them.

        Call it once the site stopped listening. aiohttp's own shutdown waits
        for a handler, then only signals its request, which a handler waiting
        for a peer never notices; cancelling the request's task ends it.
        """
        deadline = asyncio.get_running_loop().time() + grace_s
        while any(h.answering for h in self._open) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(DRAIN_POLL_S)
        for handler in list(self._open):
            handler.cancel_answer()

    def flush(self) -> None:
        self.slow.flush()
        self.crowded.flush()


class RefusedConnection(asyncio.Protocol):
    """A connection beyond the limit while every other one is being answered."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(REFUSAL)  # type: ignore[attr-defined]
        transport.close()


class GuardedRequestHandler(RequestHandler):
    """aiohttp's request handler, with a deadline on whatever the client owes us."""

    def __init__(self, manager: web.Server, *, guard: ConnectionGuard, **kwargs) -> None:
        super().__init__(manager, **kwargs)
        self._guard = guard
        self._request_since: float | None = None  # first byte of the request being read
        self._idle_since = 0.0
        self._last_read = 0.0
        self._unread: StreamReader | None = None  # a body left unread by the last answer
        self._deadline: asyncio.TimerHandle | None = None

    @property
    def answering(self) -> bool:
        """Whether a request's head has arrived and is being answered."""
        return self._current_request is not None

    def cancel_answer(self) -> None:
        request = self._current_request
        if request is not None:
            request.task.cancel()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        now = self._loop.time()
        self._request_since = self._last_read = now  # a new connection owes us a head
        self._guard.opened(self)
        self._arm(now + self._guard.limits.header_timeout_s)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._guard.closed(self)
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        now = self._loop.time()
        self._last_read = now
        if self._request_since is None and not self._lingering:
            self._request_since = now  # the next request on a kept-alive connection
            self._arm(now + self._guard.limits.header_timeout_s)
        super().data_received(data)

    async def finish_response(self, request, resp, start_time):
        if not resp.prepared:
            resp.headers[hdrs.SERVER] = SERVER_HEADER
        try:
            return await super().finish_response(request, resp, start_time)
        finally:
            self._request_since, self._idle_since = None, self._loop.time()
            self._unread = None if request.content.is_eof() else request.content
            self._arm(self._idle_since + self._guard.limits.keepalive_timeout_s)

    @property
    def _lingering(self) -> bool:
        """Whether aiohttp is reading away the body an answer left unread.

        It does so for at most ``lingering_time`` (the header timeout here),
        then closes the connection itself; closing it under aiohttp's feet
        would log an error.
        """
        return self._unread is not None and not self._unread.is_eof()

    def _arm(self, when: float) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = self._loop.call_at(when, self._check)

    def _check(self) -> None:
        self._deadline = None
        if self.transport is None:
            return
        deadline, reason = self._next_deadline()
        if deadline is None:  # being answered, body complete: finish_response re-arms
            return
        if self._loop.time() < deadline:
            self._arm(deadline)
            return
        if reason != "idle":
            self._guard.slow.note(reason)
        # A handler still reading the body is cancelled, not left to find the
        # connection gone: a reset read is an error worth a traceback elsewhere.
        self.cancel_answer()
        self.force_close()

    def _next_deadline(self) -> tuple[float | None, str]:
        limits = self._guard.limits
        if self._lingering:
            return self._loop.time() + limits.header_timeout_s, "lingering"
        request = self._current_request
        if request is not None:
            if request.content.is_eof():
                return None, ""
            since = self._request_since if self._request_since is not None else self._idle_since
            return min(self._last_read + limits.header_timeout_s,
                       since + limits.body_timeout_s), "body"  # fmt: skip
        if self._request_since is not None:
            return self._request_since + limits.header_timeout_s, "header"
        return self._idle_since + limits.keepalive_timeout_s, "idle"


class GuardedTCPSite(web.BaseSite):
    """A TCP site whose connections a ConnectionGuard makes."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int,
                 guard: ConnectionGuard, *, reuse_port: bool = False) -> None:  # fmt: skip
        super().__init__(runner, backlog=LISTEN_BACKLOG)
        self._host, self._port, self._guard = host, port, guard
        self._reuse_port = reuse_port  # several workers on one port (node/workers.py)

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        self._server = await asyncio.get_running_loop().create_server(
            self._guard.protocol_factory(self._runner.server), self._host, self._port,
            backlog=self._backlog, reuse_address=True, reuse_port=self._reuse_port or None,
        )  # fmt: skip


class GuardedUnixSite(web.BaseSite):
    """A Unix socket site whose connections a ConnectionGuard makes."""

    def __init__(self, runner: web.BaseRunner, path: str, guard: ConnectionGuard) -> None:
        super().__init__(runner, backlog=LISTEN_BACKLOG)
        self._path, self._guard = path, guard

    @property
    def name(self) -> str:
        return f"http://unix:{self._path}:"

    async def start(self) -> None:
        await super().start()
        self._server = await asyncio.get_running_loop().create_unix_server(
            self._guard.protocol_factory(self._runner.server), self._path,
            backlog=self._backlog,
        )  # fmt: skip


def connections_within_fd_limit(wanted: int) -> int:
    """Raise the soft limit on open files so ``wanted`` connections fit; what fits.

    A process out of file descriptors cannot accept, nor open its database:
    the connection limit stays below the limit on open files.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    kept = RESERVED_FDS + LISTEN_BACKLOG
    needed = wanted + kept
    if soft != resource.RLIM_INFINITY and soft < needed:
        raised = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return wanted
    return max(1, soft - kept)
