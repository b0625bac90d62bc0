"""The sending end of streams: one WebSocket per peer, for announce (as offers) and push.

A request signed as any other (``GET /federation/v1/stream``, node.peer_client
``prepare``) opens the stream; every announce and push the courier sends
that peer then goes on it as a frame (protocol.stream) instead of a request
of its own, and its answer comes back on it. A frame costs a few bytes
where a signed request costs some 600, which is what lets the courier
forward with a short delay (``settings.stream_delay_ms``) instead of
gathering a batch for ``gossip_delay_ms``.

One request at a time goes on a stream, and the next waits for its answer
(the flow control: a sender never has more than one request unanswered).
Whenever a stream cannot serve, the request goes as a request of the API
instead, and nothing is lost: an outbox item leaves the outbox only once its
answer came, whichever way. A peer that does not offer streams (it answers
the opening 404 or 405, or 400 behind a proxy that does not pass the
upgrade on) is asked again after STREAM_RETRY_S; one that
refused (429: it holds enough of ours) or whose stream broke, after
STREAM_REOPEN_S.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
from yarl import URL

from node.federation_state import WS_FRAME_OVERHEAD_BYTES, Traffic, header_bytes
from protocol import stream as frames
from protocol.errors import ProtocolError
from protocol.limits import STREAM_HEARTBEAT_S, STREAM_MAX_FRAME_BYTES

log = logging.getLogger("troc.stream")

STREAM_RETRY_S = 600.0  # a peer without streams is asked again after this long
STREAM_REOPEN_S = 10.0  # after a refused opening or a broken stream, requests this long
STREAM_CLOSE_TIMEOUT_S = 5.0  # waiting for the peer's close frame, at most
# How a node without streams answers the opening (400: a proxy in front that does not
# pass the upgrade on, so the node sees a plain request).
NOT_OFFERED = frozenset({400, 404, 405})


class StreamBroken(Exception):
    """The stream could not carry a request: send it as a request instead."""


@dataclass(frozen=True)
class StreamReply:
    """What the peer answered a request on its stream."""

    status: int
    body: bytes


class _Stream:
    """One open stream to a peer, one request on it at a time."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, signer: bytes) -> None:
        self.ws = ws
        self.signer = signer
        self.seq = 0
        self.lock = asyncio.Lock()

    @property
    def usable(self) -> bool:
        return not self.ws.closed

    async def call(self, op: str, body: bytes, timeout: float, traffic: Traffic) -> StreamReply:
        async with self.lock:
            if self.ws.closed:
                raise StreamBroken("the stream is closed")
            seq, self.seq = self.seq, (self.seq + 1) % (frames.MAX_SEQ + 1)
            frame = frames.encode_request(seq, op, body)
            traffic.requests_sent += 1
            traffic.bytes_sent += len(frame) + WS_FRAME_OVERHEAD_BYTES
            try:
                await self.ws.send_bytes(frame)
                message = await self.ws.receive(timeout=timeout)
            except (aiohttp.ClientError, ConnectionError, OSError, TimeoutError) as exc:
                await self.ws.close()
                raise StreamBroken(f"the stream failed: {type(exc).__name__}") from None
            if message.type != aiohttp.WSMsgType.BINARY:
                await self.ws.close()
                raise StreamBroken(f"the stream ended ({self.ws.close_code})")
            traffic.bytes_received += len(message.data) + WS_FRAME_OVERHEAD_BYTES
            try:
                answer = frames.decode_answer(message.data)
            except ProtocolError as error:
                await self.ws.close(code=frames.CLOSE_MALFORMED, message=b"malformed answer")
                raise StreamBroken(f"malformed answer: {error.detail}") from None
            if answer.seq != seq:
                await self.ws.close(code=frames.CLOSE_MALFORMED, message=b"answer out of order")
                raise StreamBroken("an answer out of order")
            return StreamReply(answer.status, answer.body)


class PeerStreams:
    """This node's streams to its peers, by peer URL; opened on first use."""

    def __init__(self, session: aiohttp.ClientSession, *, enabled: bool,
                 clock: Callable[[], float] | None = None) -> None:  # fmt: skip
        self._session = session
        self.enabled = enabled
        self._clock = clock or asyncio.get_running_loop().time
        self._open: dict[str, _Stream] = {}
        self._not_before: dict[str, float] = {}
        self._opening: dict[str, asyncio.Lock] = {}

    def streaming(self, base_url: str) -> bool:
        """Whether requests to this peer go on a stream now (an open one, or one to open)."""
        if not self.enabled:
            return False
        stream = self._open.get(base_url)
        if stream is not None and stream.usable:
            return True
        return self._clock() >= self._not_before.get(base_url, 0.0)

    def open_count(self) -> int:
        return sum(stream.usable for stream in self._open.values())

    async def call(self, base_url: str, op: str, body: bytes, *, open_stream,
                   signer: bytes, timeout: float, traffic: Traffic) -> StreamReply | None:  # fmt: skip
        """The peer's answer over its stream, or None: send the request instead.

        ``open_stream()`` returns the signed opening request's URL and headers.
        """
        stream = await self._stream(base_url, open_stream, signer, traffic)
        if stream is None:
            return None
        try:
            return await stream.call(op, body, timeout, traffic)
        except StreamBroken as broken:
            log.info("stream to a peer broke; requests meanwhile",
                     extra={"peer_url": base_url, "error": str(broken)})  # fmt: skip
            self._forget(base_url, STREAM_REOPEN_S)
            return None

    async def _stream(self, base_url: str, open_stream, signer: bytes,
                      traffic: Traffic) -> _Stream | None:  # fmt: skip
        stream = self._open.get(base_url)
        if stream is not None and stream.usable and stream.signer == signer:
            return stream
        if stream is not None:  # closed, or opened with the key the node replaced
            self._forget(base_url, 0.0)
            await stream.ws.close()
        if self._clock() < self._not_before.get(base_url, 0.0):
            return None
        lock = self._opening.setdefault(base_url, asyncio.Lock())
        async with lock:
            stream = self._open.get(base_url)
            if stream is not None and stream.usable:
                return stream
            if self._clock() < self._not_before.get(base_url, 0.0):
                return None
            return await self._connect(base_url, open_stream, signer, traffic)

    async def _connect(self, base_url: str, open_stream, signer: bytes,
                       traffic: Traffic) -> _Stream | None:  # fmt: skip
        url, headers = open_stream()
        traffic.requests_sent += 1
        traffic.bytes_sent += header_bytes(headers)
        try:
            ws = await self._session.ws_connect(
                URL(url, encoded=True), headers=headers, heartbeat=STREAM_HEARTBEAT_S,
                max_msg_size=STREAM_MAX_FRAME_BYTES, compress=0, autoping=True,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=STREAM_CLOSE_TIMEOUT_S),
            )  # fmt: skip
        except aiohttp.WSServerHandshakeError as refused:
            wait = STREAM_RETRY_S if refused.status in NOT_OFFERED else STREAM_REOPEN_S
            log.info("peer did not open a stream; requests meanwhile",
                     extra={"peer_url": base_url, "status": refused.status})  # fmt: skip
            self._forget(base_url, wait)
            return None
        except (aiohttp.ClientError, OSError, TimeoutError):
            self._forget(base_url, STREAM_REOPEN_S)  # unreachable: the request will say why
            return None
        stream = _Stream(ws, signer)
        self._open[base_url] = stream
        log.info("stream opened", extra={"peer_url": base_url})
        return stream

    def _forget(self, base_url: str, wait_s: float) -> None:
        self._open.pop(base_url, None)
        self._not_before[base_url] = self._clock() + wait_s

    async def close(self) -> None:
        streams, self._open = list(self._open.values()), {}
        for stream in streams:
            await stream.ws.close(code=frames.CLOSE_GOING_AWAY, message=b"node stopping")
