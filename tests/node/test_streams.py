"""Streams between real nodes: announce and push on one WebSocket per peer, and what a
hostile sender gets (docs/protocol-federation.md section 13)."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import msgpack
import pytest

from node.federation.stream import close_streams
from node.keys import peer_client_key, peer_limits_key, traffic_key
from protocol import federation as messages
from protocol import stream as frames
from protocol.identity import NodeKey
from protocol.limits import STREAM_FRAME_BURST, STREAM_MAX_FRAME_BYTES, STREAM_MAX_PER_NODE
from storage import annonces as annonce_store
from storage import peers as peer_store
from tests.node.harness import (
    Clock,
    eventually,
    make_nodes,
    outboxes_empty,
    peer,
    signed_headers,
)

STREAM_URL = "{}" + frames.STREAM_PATH


async def _pair(db, spare_db, tmp_path, *, b_options=None):
    a, b = await make_nodes(db, spare_db, tmp_path, ["A", "B"], Clock())
    b.options = b_options or {}
    await peer(a, b)
    await a.start()
    await b.start()
    return a, b


async def test_annonces_go_on_one_stream_and_arrive(db, spare_db, tmp_path):
    a, b = await _pair(db, spare_db, tmp_path)
    try:
        posted = [await a.post(f"Annonce {n}") for n in range(3)]
        for signed in posted:
            await eventually(lambda s=signed: b.holds(s.id))
        await eventually(lambda: outboxes_empty(a, b))
        streams = a.app[peer_client_key].streams
        assert streams.open_count() == 1
        assert a.app[peer_client_key].streaming(b.url)
        by_endpoint = b.app[traffic_key].received_by_endpoint
        assert by_endpoint.get("stream") == 1  # one opening request, whatever came on it
        assert by_endpoint.get("announce", 0) >= 1 and by_endpoint.get("push", 0) >= 1
        held = await b.db.read(annonce_store.get_by_id, posted[0].id)
        assert held.envelope == posted[0].envelope and held.source == a.node_id
    finally:
        await a.stop()
        await b.stop()


async def test_a_peer_without_streams_gets_requests(db, spare_db, tmp_path):
    a, b = await _pair(db, spare_db, tmp_path, b_options={"streams": "off"})
    try:
        signed = await a.post()
        await eventually(lambda: b.holds(signed.id))
        await eventually(lambda: outboxes_empty(a, b))
        client = a.app[peer_client_key]
        assert client.streams.open_count() == 0
        assert not client.streaming(b.url)  # not asked again before STREAM_RETRY_S
        assert b.app[traffic_key].received_by_endpoint.get("push", 0) >= 1
    finally:
        await a.stop()
        await b.stop()


async def test_a_stream_closed_by_the_peer_is_replaced_and_nothing_is_lost(db, spare_db, tmp_path):
    a, b = await _pair(db, spare_db, tmp_path)
    try:
        first = await a.post("Avant")
        await eventually(lambda: b.holds(first.id))
        await close_streams(b.app)  # as a peer that stops would
        second = await a.post("Après")
        await eventually(lambda: b.holds(second.id))
        await eventually(lambda: outboxes_empty(a, b))
    finally:
        await a.stop()
        await b.stop()


# --- A hostile sender, frame by frame -----------------------------------------------


async def _open(session: aiohttp.ClientSession, key: NodeKey, node) -> aiohttp.ClientWebSocketResponse:
    url = STREAM_URL.format(node.url)
    return await session.ws_connect(url, headers=signed_headers(key, "GET", url),
                                    max_msg_size=0)  # fmt: skip


@pytest.fixture
async def pair(db, spare_db, tmp_path):
    a, b = await _pair(db, spare_db, tmp_path)
    yield a, b
    await a.stop()
    await b.stop()


async def _ask(ws, seq: int, op: str, body: bytes) -> frames.StreamAnswer:
    await ws.send_bytes(msgpack.packb([seq, op, body], use_bin_type=True))
    message = await ws.receive(timeout=10)
    assert message.type == aiohttp.WSMsgType.BINARY, message
    return frames.decode_answer(message.data)


async def _closed_with(ws) -> int:
    message = await ws.receive(timeout=10)
    while message.type == aiohttp.WSMsgType.BINARY:
        message = await ws.receive(timeout=10)
    assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), message
    return ws.close_code


async def test_a_request_on_a_stream_is_answered_as_the_api_answers_it(pair):
    a, b = pair
    signed = await a.post()
    await eventually(lambda: b.holds(signed.id))
    async with aiohttp.ClientSession() as session:
        ws = await _open(session, a.key, b)
        unknown = b"\x07" * 32
        answer = await _ask(ws, 5, "offer", frames.encode_offer([signed.id, unknown]))
        assert (answer.seq, answer.status) == (5, 200)
        assert frames.decode_offer_answer(answer.body, 2) == [1]  # by position: the unknown one
        # A malformed body: the API's 400, and the stream goes on.
        answer = await _ask(ws, 6, "offer", msgpack.packb({"ids": "x"}))
        assert answer.status == 400 and json.loads(answer.body)["code"] == "malformed"
        answer = await _ask(ws, 7, "offer", msgpack.packb([unknown[:31]], use_bin_type=True))
        assert answer.status == 400
        repeated = msgpack.packb([unknown, unknown], use_bin_type=True)
        answer = await _ask(ws, 8, "offer", repeated)
        assert answer.status == 400 and json.loads(answer.body)["field"] == "ids"
        # An op a stream does not carry (the request API's announce included): 404, and it goes on.
        for op in ("reconcile", "announce"):
            answer = await _ask(ws, 9, op, messages.encode_announce([]))
            assert answer.status == 404
        answer = await _ask(ws, 10, "push", messages.encode_push([b"not an envelope"]))
        assert answer.status == 400
        assert json.loads(answer.body)["refused"][0]["index"] == 0
        await ws.close()


@pytest.mark.parametrize("send, code", [
    (lambda ws: ws.send_str("bonjour"), frames.CLOSE_UNSUPPORTED),
    (lambda ws: ws.send_bytes(b"\xc1 not msgpack"), frames.CLOSE_MALFORMED),
    (lambda ws: ws.send_bytes(msgpack.packb({"seq": 1})), frames.CLOSE_MALFORMED),
    (lambda ws: ws.send_bytes(msgpack.packb([-1, "offer", b""])), frames.CLOSE_MALFORMED),
    (lambda ws: ws.send_bytes(msgpack.packb([1, "offer", "text"])), frames.CLOSE_MALFORMED),
    (lambda ws: ws.send_bytes(b"\x00" * (STREAM_MAX_FRAME_BYTES + 1)), frames.CLOSE_TOO_LARGE),
])  # fmt: skip
async def test_a_message_that_is_not_a_frame_ends_the_stream(pair, send, code):
    a, b = pair
    async with aiohttp.ClientSession() as session:
        ws = await _open(session, a.key, b)
        await send(ws)
        assert await _closed_with(ws) == code
        # Nothing was acted on, and the node still answers on a new stream.
        ws = await _open(session, a.key, b)
        answer = await _ask(ws, 0, "offer", frames.encode_offer([]))
        assert answer.status == 200
        await ws.close()


async def test_a_stream_is_opened_only_by_a_signed_request_of_a_peer(pair):
    a, b = pair
    url = STREAM_URL.format(b.url)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as unsigned:
            await session.ws_connect(url)
        assert unsigned.value.status == 401
        stranger = NodeKey.from_seed(b"\x99" * 32)
        with pytest.raises(aiohttp.WSServerHandshakeError) as unknown:
            await session.ws_connect(url, headers=signed_headers(stranger, "GET", url))
        assert unknown.value.status == 403
        # Signed, but not a WebSocket: a clear 400.
        async with session.get(url, headers=signed_headers(a.key, "GET", url)) as plain:
            assert plain.status == 400


async def test_a_peer_opening_many_streams_gets_a_few(pair):
    a, b = pair
    async with aiohttp.ClientSession() as session:
        opened, refused = [], []
        for _ in range(STREAM_MAX_PER_NODE + 3):
            try:
                opened.append(await _open(session, a.key, b))
            except aiohttp.WSServerHandshakeError as error:
                refused.append(error.status)
        assert len(opened) == STREAM_MAX_PER_NODE
        assert refused == [429] * 3
        for ws in opened:
            await ws.close()
        await eventually(lambda: _no_streams_of(b, a.node_id))
        again = await _open(session, a.key, b)  # closed ones count no more
        await again.close()


async def _no_streams_of(node, node_id: bytes) -> bool:
    return not node.app[peer_limits_key].streams.get(node_id)


async def test_a_peer_removed_while_streaming_is_disconnected(pair):
    a, b = pair
    async with aiohttp.ClientSession() as session:
        ws = await _open(session, a.key, b)
        assert (await _ask(ws, 0, "offer", frames.encode_offer([]))).status == 200
        await b.db.write(peer_store.remove_peer, a.node_id)
        await ws.send_bytes(frames.encode_request(1, "offer", frames.encode_offer([])))
        assert await _closed_with(ws) == frames.CLOSE_POLICY


async def test_a_sender_faster_than_the_receiver_is_answered_in_order_within_its_rate(pair):
    """Requests sent without waiting are read one at a time and answered in order; past
    the burst of its bucket the answer is 429 (nothing of those is acted on)."""
    a, b = pair
    count = STREAM_FRAME_BURST + 50
    body = frames.encode_offer([bytes([n]) * 32 for n in range(64)])
    async with aiohttp.ClientSession() as session:
        ws = await _open(session, a.key, b)
        sending = asyncio.create_task(_send_all(ws, count, body))
        statuses = []
        for seq in range(count):
            message = await ws.receive(timeout=30)
            answer = frames.decode_answer(message.data)
            assert answer.seq == seq
            statuses.append(answer.status)
        await sending
        assert statuses[:STREAM_FRAME_BURST] == [200] * STREAM_FRAME_BURST
        assert 429 in statuses[STREAM_FRAME_BURST:]
        await ws.close()


async def _send_all(ws, count: int, body: bytes) -> None:
    for seq in range(count):
        await ws.send_bytes(frames.encode_request(seq, "offer", body))
