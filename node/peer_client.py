"""Requests to peers: the client side of the federation API.

One aiohttp ``ClientSession`` per node, opened by ``peer_client_ctx`` (a
cleanup context) and kept under ``peer_client_key``. Every call takes two
separate steps, so that no function both signs and sends:

1. ``prepare`` builds the request and signs it with the node key
   (``protocol.httpsig.sign_request``): method, URL, headers, body;
2. ``send`` sends a prepared request and reads a bounded answer.

Everything a node sends another goes through one of its methods: the gossip
calls (announce, push, fetch, reconcile), the point-to-point ones (a private
message, a forwarded report), discovery. Announce and push go on the peer's
stream when it has one (node.streams), as requests otherwise.

Timeouts are named constants (tests pass shorter ones through
``PeerTimeouts``). Failures become errors of ours: ``PeerUnreachable``
(connection refused, timeout), ``PeerRefused`` (the peer's RFC 9457 problem
document: its status and code), ``PeerBadAnswer`` (wrong content type, too
large, malformed, or a node document of another key).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
from yarl import URL

from node.errors import PeerBadAnswer, PeerRefused, PeerUnreachable
from node.federation_state import Traffic, header_bytes
from node.streams import PeerStreams, StreamReply
from node.version import SOFTWARE
from protocol import directory, limits
from protocol import federation as messages
from protocol.conversations import MESSAGE_PATH, decode_message_answer
from protocol.errors import ProtocolError
from protocol.httpsig import sign_request
from protocol.identity import NodeKey
from protocol.nodedoc import NodeDocument, open_node_document
from protocol.reports import REPORT_PATH, decode_report_answer
from protocol import stream as frames
from protocol.stream import STREAM_PATH

PEER_CONNECT_TIMEOUT_S = 5.0
PEER_TOTAL_TIMEOUT_S = 30.0
NODE_DOCUMENT_MAX_BYTES = 64 * 1024  # /.well-known/troc, JSON; the document itself is smaller
PROBLEM_MAX_BYTES = 16 * 1024  # a peer's problem document: more is not worth reading
READ_CHUNK_BYTES = 64 * 1024
WELL_KNOWN_PATH = "/.well-known/troc"
JSON = "application/json"
PROBLEM_JSON = "application/problem+json"


@dataclass(frozen=True)
class PeerTimeouts:
    connect: float = PEER_CONNECT_TIMEOUT_S
    total: float = PEER_TOTAL_TIMEOUT_S


@dataclass(frozen=True)
class PreparedRequest:
    """A request ready to go: signed already when it is for the federation API."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    expects: str  # the content type of a successful answer
    max_bytes: int  # the longest answer read
    signer: bytes | None = None  # the node id whose key signed it (None: unsigned)


def peer_base_url(url: str) -> str:
    return url.rstrip("/")


class PeerClient:
    """Signed, bounded requests to other nodes, over one shared session."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        key: NodeKey,
        clock: Callable[[], float],
        traffic: Traffic,
        timeouts: PeerTimeouts,
        streams: PeerStreams | None = None,
    ) -> None:
        self.streams = streams
        self._session = session
        self._key = key
        self._clock = clock
        self._traffic = traffic
        self._timeouts = timeouts
        self._previous: NodeKey | None = None

    # --- The two steps ------------------------------------------------------

    def use_key(self, key: NodeKey, *, previous: NodeKey | None = None) -> None:
        """Sign with ``key`` from now on; ``previous``: the key it replaced, a fallback for a
        node that does not know the new one yet (node.succession)."""
        self._key, self._previous = key, previous

    def prepare(self, method: str, peer_url: str, path: str, body: bytes = b"") -> PreparedRequest:
        """Build a federation request and sign it; nothing is sent."""
        return self._signed(self._key, method, peer_base_url(peer_url) + path, body)

    def _signed(self, key: NodeKey, method: str, url: str, body: bytes) -> PreparedRequest:
        headers = {"Content-Type": messages.CONTENT_TYPE} if body else {}
        headers.update(sign_request(key, method, url, headers, body, created=int(self._clock())))
        return PreparedRequest(method, url, headers, body, messages.CONTENT_TYPE,
                               limits.FEDERATION_MAX_BODY_BYTES, key.node_id)  # fmt: skip

    async def send(self, request: PreparedRequest) -> bytes:
        """Send a prepared request; the answer's body, or a PeerError.

        Signed with a new key that the node does not know yet (403
        ``unknown-key``), it is signed again with the key it replaced, if any.
        """
        try:
            return await self._send_once(request)
        except PeerRefused as refused:
            previous = self._previous
            if (refused.status != 403 or refused.peer_code != "unknown-key" or previous is None
                    or request.signer != self._key.node_id):  # fmt: skip
                raise
            return await self._send_once(
                self._signed(previous, request.method, request.url, request.body))

    async def _send_once(self, request: PreparedRequest) -> bytes:
        self._traffic.requests_sent += 1
        self._traffic.bytes_sent += len(request.body) + header_bytes(request.headers)
        try:
            async with self._session.request(
                request.method,
                URL(request.url, encoded=True),  # sent exactly as signed
                headers=request.headers,
                data=request.body or None,
                timeout=aiohttp.ClientTimeout(
                    total=self._timeouts.total, connect=self._timeouts.connect
                ),
            ) as response:
                body = await _read_bounded(response, max(request.max_bytes, PROBLEM_MAX_BYTES))
                self._traffic.bytes_received += len(body) + header_bytes(response.headers)
                return _checked_answer(request, response, body)
        except aiohttp.ConnectionTimeoutError:  # a TimeoutError too: it comes first
            raise PeerUnreachable(
                f"{request.url}: no connection within {self._timeouts.connect:g} s"
            ) from None
        except TimeoutError:
            raise PeerUnreachable(
                f"{request.url}: no answer within {self._timeouts.total:g} s"
            ) from None
        except (aiohttp.ClientError, OSError) as exc:
            raise PeerUnreachable(f"cannot reach {request.url}: {_reason(exc)}") from None

    # --- Discovery ----------------------------------------------------------

    async def discover(self, url: str) -> NodeDocument:
        """Fetch and verify the node document a URL serves (an unsigned GET)."""
        target = peer_base_url(url) + WELL_KNOWN_PATH
        request = PreparedRequest(
            "GET", target, {"Accept": JSON}, b"", JSON, NODE_DOCUMENT_MAX_BYTES
        )
        try:
            body = await self.send(request)
        except PeerRefused as refused:
            raise PeerBadAnswer(
                f"{url} is not a Troc node: {WELL_KNOWN_PATH} answered HTTP {refused.status}"
            ) from None
        except PeerBadAnswer as bad:
            raise PeerBadAnswer(f"{url} is not a Troc node: {bad.detail}") from None
        try:
            return open_node_document(json.loads(body))
        except (ValueError, RecursionError, ProtocolError) as exc:
            detail = exc.detail if isinstance(exc, ProtocolError) else "not JSON"
            raise PeerBadAnswer(f"{url} is not a Troc node: bad node document ({detail})") from None

    # --- The federation API -------------------------------------------------

    async def node_document(self, peer_url: str, expected_id: bytes) -> NodeDocument:
        """The peer's node document through the signed API: it accepts us and is who we think."""
        body = await self.send(self.prepare("GET", peer_url, messages.NODE_PATH))
        served = _decoded(messages.decode_node_document, body, peer_url)
        try:
            doc = open_node_document(served)
        except ProtocolError as exc:
            raise PeerBadAnswer(f"{peer_url}: bad node document ({exc.detail})") from None
        if doc.node_id != expected_id:
            raise PeerBadAnswer(f"{peer_url} now answers with another node's key")
        return doc

    async def announce(self, peer_url: str, ids: list[bytes]) -> list[bytes]:
        """Offer ids; the ones the peer wants, among those offered."""
        ids = list(dict.fromkeys(ids))
        answer = await self._on_stream(peer_url, "offer", frames.encode_offer(ids))
        if answer is not None:
            wanted = _decoded(lambda body: frames.decode_offer_answer(body, len(ids)), answer,
                              peer_url)  # fmt: skip
            return [ids[index] for index in wanted]
        body = messages.encode_announce(ids)
        answer = await self.send(self.prepare("POST", peer_url, messages.ANNOUNCE_PATH, body))
        want = _decoded(messages.decode_want, answer, peer_url)
        offered = set(ids)
        return [annonce_id for annonce_id in want if annonce_id in offered]

    async def push(self, peer_url: str, envelopes: list[bytes]) -> messages.PushOutcome:
        body = messages.encode_push(envelopes)
        answer = await self._on_stream(peer_url, "push", body)
        if answer is None:
            answer = await self.send(self.prepare("POST", peer_url, messages.PUSH_PATH, body))
        return _decoded(messages.decode_push_outcome, answer, peer_url)

    def streaming(self, peer_url: str) -> bool:
        """Whether announce and push to this peer go on a stream (node.streams)."""
        return self.streams is not None and self.streams.streaming(peer_base_url(peer_url))

    async def _on_stream(self, peer_url: str, op: str, body: bytes) -> bytes | None:
        """The answer to ``op`` on the peer's stream; None when there is no stream to use
        (the caller sends the request instead). A refusal raises as a request's would."""
        if self.streams is None or not self.streams.enabled:
            return None
        base = peer_base_url(peer_url)

        def opening() -> tuple[str, dict[str, str]]:
            request = self.prepare("GET", base, STREAM_PATH)
            return request.url, request.headers

        reply = await self.streams.call(base, op, body, open_stream=opening,
                                        signer=self._key.node_id,
                                        timeout=self._timeouts.total,
                                        traffic=self._traffic)  # fmt: skip
        return None if reply is None else _checked_reply(f"{base}{STREAM_PATH} ({op})", reply)

    async def fetch(self, peer_url: str, ids: list[bytes]) -> list[bytes]:
        request = self.prepare("POST", peer_url, messages.FETCH_PATH, messages.encode_fetch(ids))
        return _decoded(messages.decode_envelopes, await self.send(request), peer_url)

    async def private_message(self, peer_url: str, body: bytes) -> bool:
        """Deliver one message (protocol.conversations); whether the node had it already."""
        request = self.prepare("POST", peer_url, MESSAGE_PATH, body)
        return _decoded(decode_message_answer, await self.send(request), peer_url)

    async def report(self, peer_url: str, body: bytes) -> bool:
        """Deliver one forwarded report (protocol.reports); whether the node had it already."""
        request = self.prepare("POST", peer_url, REPORT_PATH, body)
        return _decoded(decode_report_answer, await self.send(request), peer_url)

    async def nodes_push(self, peer_url: str, records: list[dict]) -> directory.PushOutcome:
        """Push directory records (protocol.directory)."""
        request = self.prepare("POST", peer_url, directory.NODES_PATH, directory.encode_nodes(records))
        return _decoded(directory.decode_nodes_outcome, await self.send(request), peer_url)

    async def nodes_digest(self, peer_url: str, digest: bytes) -> tuple[bytes, list | None]:
        """The peer's directory digest, and its entries when they differ from ``digest``."""
        request = self.prepare("POST", peer_url, directory.NODES_DIGEST_PATH,
                               directory.encode_digest(digest))  # fmt: skip
        return _decoded(directory.decode_digest_answer, await self.send(request), peer_url)

    async def nodes_fetch(self, peer_url: str, keys: list[tuple[str, bytes]]) -> list[dict]:
        """The peer's records of ``keys``, as raw values (open them with node.directory)."""
        request = self.prepare("POST", peer_url, directory.NODES_FETCH_PATH,
                               directory.encode_fetch(keys))  # fmt: skip
        return _decoded(directory.decode_records, await self.send(request), peer_url)

    async def reconcile(self, peer_url: str, message: bytes) -> bytes:
        request = self.prepare(
            "POST", peer_url, messages.RECONCILE_PATH, messages.encode_reconcile(message)
        )
        return _decoded(messages.decode_reconcile, await self.send(request), peer_url)


def _decoded(decoder, body: bytes, peer_url: str):
    try:
        return decoder(body)
    except ProtocolError as exc:
        raise PeerBadAnswer(f"{peer_url} answered a malformed message ({exc.detail})") from None


async def _read_bounded(response: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    if response.content_length is not None and response.content_length > max_bytes:
        raise PeerBadAnswer(f"{response.url} answered more than {max_bytes} bytes")
    chunks, size = [], 0
    async for chunk in response.content.iter_chunked(READ_CHUNK_BYTES):
        size += len(chunk)
        if size > max_bytes:
            raise PeerBadAnswer(f"{response.url} answered more than {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _checked_reply(url: str, reply: StreamReply) -> bytes:
    """An answer that came on a stream: its body on 2xx, else what the request's would raise."""
    if reply.status >= 400:
        raise _refusal(url, reply.status, PROBLEM_JSON, "error", reply.body)
    if not 200 <= reply.status < 300:
        raise PeerBadAnswer(f"{url} answered HTTP {reply.status}")
    return reply.body


def _checked_answer(
    request: PreparedRequest, response: aiohttp.ClientResponse, body: bytes
) -> bytes:
    if response.status >= 400:
        raise _refusal(request.url, response.status, response.content_type,
                       response.reason or "error", body)  # fmt: skip
    if not 200 <= response.status < 300:
        raise PeerBadAnswer(f"{request.url} answered HTTP {response.status}")
    if response.content_type != request.expects:
        raise PeerBadAnswer(
            f"{request.url} answered {response.content_type or 'no content type'}, "
            f"not {request.expects}"
        )
    if len(body) > request.max_bytes:
        raise PeerBadAnswer(f"{request.url} answered more than {request.max_bytes} bytes")
    return body


def _refusal(url: str, status: int, content_type: str, reason: str, body: bytes) -> PeerRefused:
    """The peer's problem document as a PeerRefused; its text is kept short and plain."""
    code, detail = "http-error", reason
    if content_type == PROBLEM_JSON and len(body) <= PROBLEM_MAX_BYTES:
        try:
            problem = json.loads(body)
        except (ValueError, RecursionError):
            problem = None
        if isinstance(problem, dict):
            code = _plain(problem.get("code"), 64) or code
            detail = _plain(problem.get("detail"), 200) or detail
    return PeerRefused(
        f"{url} refused the request: HTTP {status} {code}: {detail}",
        status=status,
        peer_code=code,
    )


def _plain(value: object, limit: int) -> str:
    if not isinstance(value, str):
        return ""
    return "".join(c for c in value[:limit] if c.isprintable())


def _reason(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.ClientConnectorError) and exc.os_error.errno:
        return os.strerror(exc.os_error.errno).lower()  # "connection refused"
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


async def open_peer_session(timeouts: PeerTimeouts) -> aiohttp.ClientSession:
    """The node's one client session: short headers, no compression asked for."""
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=timeouts.total, connect=timeouts.connect),
        headers={"User-Agent": SOFTWARE},
        skip_auto_headers=("Accept", "Accept-Encoding"),
        connector=aiohttp.TCPConnector(limit=100, limit_per_host=8),
        raise_for_status=False,
    )


async def close_peer_session(session: aiohttp.ClientSession) -> None:
    await session.close()
    # Lets the connector's transports close before the loop goes (aiohttp advice).
    await asyncio.sleep(0)
