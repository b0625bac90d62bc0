"""The receiving end of a stream: offers (announces) and pushes over one WebSocket per peer.

``GET /federation/v1/stream`` is a federation request like any other: the
auth middleware verifies its signature and the limits middleware holds it to
STREAM_MAX_PER_NODE open streams per node. It is then upgraded to a
WebSocket, and each binary message is a request frame (protocol.stream)
answered as the request API answers the same body (node.federation.api
``STREAMED``), in the order read, one at a time: a sender that sends faster
than this end works waits on its own socket (the WebSocket reader stops
reading past a small buffer), and nothing it sent is acted on before it is
read whole.

Before each request the sender must still be accepted (a peer removed or
replaced since the stream opened is disconnected) and within its rate of
stream requests (else the answer is 429, as over HTTP). A message that is
not a frame, a text message or one over STREAM_MAX_FRAME_BYTES ends the
stream with its close code; nothing of it is acted on. docs/protocol-federation.md
section 13 is the normative text.
"""

from __future__ import annotations

import asyncio
import logging
import weakref

from aiohttp import WSMsgType, web

from node.courier import heard_from
from node.federation.api import STREAMED
from node.federation.auth import peer_id_key, still_accepted
from node.federation_state import WS_FRAME_OVERHEAD_BYTES
from node.keys import db_key, main_app_key, peer_limits_key, settings_key, traffic_key
from node.peer_limits import STREAM_ENDPOINT, STREAM_FRAMES
from node.problems import HANDLED_ERRORS, error_response, problem_response
from protocol import stream as frames
from protocol.errors import ProtocolError
from protocol.identity import node_id_text
from protocol.limits import STREAM_HEARTBEAT_S, STREAM_MAX_FRAME_BYTES
from storage.db import Changes
from storage.peers import PEERS

log = logging.getLogger("troc.stream")

routes = web.RouteTableDef()
open_streams_key = web.AppKey("open_streams_key", weakref.WeakSet)
accepted_key = web.AppKey("accepted_key", dict)  # node id -> still accepted, until peers change
ACCEPTED_CACHE_SIZE = 10_000
# A peer answered on its stream is told to the courier (its back-off ends) at most this often.
HEARD_EVERY_S = 10.0


@routes.get("/" + STREAM_ENDPOINT)
async def stream(request: web.Request) -> web.StreamResponse:
    app = request.app[main_app_key]
    if app[settings_key].streams != "on":  # as a node that does not speak streams
        raise web.HTTPNotFound()
    ws = web.WebSocketResponse(heartbeat=STREAM_HEARTBEAT_S, max_msg_size=STREAM_MAX_FRAME_BYTES,
                               compress=False)  # fmt: skip
    if not ws.can_prepare(request).ok:
        return problem_response(400, "malformed", "a stream is opened as a WebSocket")
    peer_id = request[peer_id_key]
    await ws.prepare(request)
    app[open_streams_key].add(ws)
    heard_from(app, peer_id)
    peer = node_id_text(peer_id)
    log.info("stream opened", extra={"peer": peer})
    try:
        await _serve(app, ws, peer_id)
    finally:
        app[open_streams_key].discard(ws)
        log.info("stream closed", extra={"peer": peer, "close_code": ws.close_code})
    return ws


async def _serve(app: web.Application, ws: web.WebSocketResponse, peer_id: bytes) -> None:
    traffic = app[traffic_key]
    clock = asyncio.get_running_loop().time
    told = clock()  # the courier heard of the peer when the stream opened
    async for message in ws:
        if message.type == WSMsgType.TEXT:
            await ws.close(code=frames.CLOSE_UNSUPPORTED, message=b"frames are binary")
            return
        if message.type != WSMsgType.BINARY:  # an error: the reader closed the stream already
            return
        traffic.bytes_received += len(message.data) + WS_FRAME_OVERHEAD_BYTES
        try:
            frame = frames.decode_request(message.data)
        except ProtocolError as error:
            await ws.close(code=frames.CLOSE_MALFORMED, message=error.detail.encode()[:120])
            return
        if not await _accepted(app, peer_id):
            await ws.close(code=frames.CLOSE_POLICY, message=b"no longer an accepted peer")
            return
        traffic.note_request(frames.STREAM_OPS.get(frame.op, "other"))
        status, body = await answer(app, peer_id, frame)
        answer_frame = frames.encode_answer(frame.seq, status, body)
        traffic.bytes_sent += len(answer_frame) + WS_FRAME_OVERHEAD_BYTES
        await ws.send_bytes(answer_frame)
        if status < 400 and clock() - told >= HEARD_EVERY_S:  # not a wake-up per request
            told = clock()
            heard_from(app, peer_id)


async def answer(app: web.Application, peer_id: bytes,
                 frame: frames.StreamRequest) -> tuple[int, bytes]:  # fmt: skip
    """The status and body the request API answers to this request's body."""
    handler = STREAMED.get(frame.op)
    if handler is None:
        response = problem_response(404, "not-found", "a stream carries offer and push")
    else:
        try:
            app[peer_limits_key].take(peer_id, STREAM_ENDPOINT, STREAM_FRAMES)
            response = await handler(app, peer_id, frame.body)
        except HANDLED_ERRORS as error:
            response = error_response(error)
        except Exception:  # noqa: BLE001 - the stream goes on, as the next request would
            log.exception("unexpected error on a stream", extra={"op": frame.op})
            response = problem_response(500, "internal-error",
                                        "the node could not handle this request")  # fmt: skip
    return response.status, response.body


async def _accepted(app: web.Application, peer_id: bytes) -> bool:
    """``still_accepted``, remembered until the peers change (one read per peer, not per request)."""
    known = app[accepted_key]
    if peer_id not in known:
        if len(known) >= ACCEPTED_CACHE_SIZE:
            known.clear()
        known[peer_id] = await still_accepted(app, peer_id)
    return known[peer_id]


def setup_streams(app: web.Application) -> None:
    app[open_streams_key] = weakref.WeakSet()
    app[accepted_key] = {}
    app.on_shutdown.append(close_streams)
    app.cleanup_ctx.append(_peers_changed_ctx)


async def _peers_changed_ctx(app: web.Application):
    """Cleanup context: a change of the peers (in any worker) forgets who was accepted."""

    def changed(changes: Changes) -> None:
        if PEERS in changes:
            app[accepted_key].clear()

    app[db_key].on_change(changed)
    yield
    app[db_key].remove_listener(changed)


async def close_streams(app: web.Application) -> None:
    """Close every stream peers hold open here (the node is stopping): they go on by request."""
    for ws in list(app[open_streams_key]):
        await ws.close(code=frames.CLOSE_GOING_AWAY, message=b"node stopping")
