"""What one node may ask of another, through the real HTTP app: replays after a restart,
rates and bursts per node, storage bounds per node, and CPU kept off the event loop.

Every refusal is a 429 problem document with Retry-After, which a sender takes
as a reason to back off (node.errors.PeerRefused.is_transient), and nothing of
a refused request is stored.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

import pytest
from sqlalchemy import func, select

from node.errors import PeerRefused, TooManyRequests
from node.peer_limits import PeerLimits
from protocol import federation as messages
from protocol import limits
from protocol.identity import NodeKey
from protocol.reconcile.items import BOTTOM, INFINITY, item_key
from protocol.reconcile.messages import Mode, _encode_items, _MessageWriter
from protocol.reports import REPORT_PATH, ForwardedReport, encode_report
from storage import peers as peer_store
from storage import reports as report_store
from storage.schema import reports
from tests.factories import NOW
from tests.node.harness import Clock, make_nodes, send, signed_call, signed_headers
from tests.node.test_federation_hostile import assert_problem

PEER = NodeKey.from_seed(b"\x81" * 32)
OTHER_PEER = NodeKey.from_seed(b"\x82" * 32)


@pytest.fixture
async def node(db, spare_db, tmp_path):
    """A node with one annonce of its own; PEER and OTHER_PEER accepted."""
    (made,) = await make_nodes(db, spare_db, tmp_path, ["Origine"], Clock())
    for index, key in enumerate((PEER, OTHER_PEER)):
        await made.db.write(peer_store.add_peer, key.node_id, f"http://127.0.0.1:{9 + index}",
                            "Pair", NOW)  # fmt: skip
    await made.start(background_tasks=False)
    made.annonce = (await made.post("Cours de guitare")).annonce
    yield made
    await made.stop()


def report_body(node, key: bytes) -> bytes:
    return encode_report(ForwardedReport(key, node.node_id, node.annonce.uid, "arnaque", "x"))


async def count_reports(node) -> int:
    async with node.db.engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(reports))).scalar_one()


def assert_too_many(answer) -> None:
    assert_problem(answer, 429, "too-many-requests")


# --- Replays ----------------------------------------------------------------------------


async def test_a_captured_request_is_refused_after_a_restart(node):
    url = node.url + messages.ANNOUNCE_PATH
    body = messages.encode_announce([b"\x05" * 32])
    headers = signed_headers(PEER, "POST", url, body)
    assert (await send("POST", url, body, headers)).status == 200
    await node.stop()
    await node.start(background_tasks=False)  # a new process would hold no memory of it
    replayed = await send("POST", url, body, headers)
    assert_problem(replayed, 401, "replayed")


# --- Rates --------------------------------------------------------------------------------


async def test_reports_beyond_the_burst_are_refused_and_not_stored(node):
    statuses = []
    for index in range(limits.PEER_REPORT_BURST + 1):
        answer = await signed_call(PEER, node, REPORT_PATH, report_body(node, os.urandom(16)))
        statuses.append(answer.status)
    assert statuses == [200] * limits.PEER_REPORT_BURST + [429]
    assert await count_reports(node) == limits.PEER_REPORT_BURST
    # Another node's bucket is its own.
    other = await signed_call(OTHER_PEER, node, REPORT_PATH, report_body(node, os.urandom(16)))
    assert other.status == 200


async def test_the_bucket_fills_again_with_time(node):
    for _ in range(limits.PEER_REPORT_BURST):
        await signed_call(PEER, node, REPORT_PATH, report_body(node, os.urandom(16)))
    refused = await signed_call(PEER, node, REPORT_PATH, report_body(node, os.urandom(16)))
    assert_too_many(refused)
    wait = 3600 / limits.PEER_REPORT_RATE_PER_H
    node.clock.advance(wait)
    again = await signed_call(PEER, node, REPORT_PATH, report_body(node, os.urandom(16)),
                              created=int(node.clock()))  # fmt: skip
    assert again.status == 200


async def test_a_refusal_says_when_to_try_again(node):
    body = messages.encode_announce([b"\x06" * 32])
    for _ in range(limits.PEER_GOSSIP_BURST):
        assert (await signed_call(PEER, node, messages.ANNOUNCE_PATH, body)).status == 200
    url = node.url + messages.ANNOUNCE_PATH
    refused = await send("POST", url, body, signed_headers(PEER, "POST", url, body))
    assert_too_many(refused)


# --- Storage bounds -------------------------------------------------------------------------


async def test_open_reports_from_one_node_are_bounded(node):
    for index in range(limits.PEER_MAX_OPEN_REPORTS):
        await node.db.write(
            report_store.add_forwarded_report, from_node=PEER.node_id, report_key=os.urandom(16),
            origin=node.node_id, uid=node.annonce.uid, title="Cours de guitare",
            reason="arnaque", details="", now=NOW,
        )  # fmt: skip
    refused = await signed_call(PEER, node, REPORT_PATH, report_body(node, os.urandom(16)))
    assert_too_many(refused)
    assert await count_reports(node) == limits.PEER_MAX_OPEN_REPORTS
    other = await signed_call(OTHER_PEER, node, REPORT_PATH, report_body(node, os.urandom(16)))
    assert other.status == 200


# --- CPU ---------------------------------------------------------------------------------------


def _large_reconcile_message() -> bytes:
    """One range listing some 31,000 ids: about 1 MiB, the most a message may be."""
    keys = sorted(item_key(1_800_000_000 + i, os.urandom(32)) for i in range(31_000))
    writer = _MessageWriter(limits.RECONCILE_MAX_MESSAGE_BYTES)
    assert writer.try_add(INFINITY, Mode.ID_LIST, _encode_items(keys, BOTTOM.ts))
    return writer.finish()


async def test_a_large_reconciliation_round_does_not_hold_the_pages(node):
    """While the node answers a 1 MiB round, its other pages go on being served."""
    body = messages.encode_reconcile(_large_reconcile_message())
    finished: dict[str, float] = {}

    async def reconcile():
        answer = await signed_call(PEER, node, messages.RECONCILE_PATH, body)
        finished["reconcile"] = time.monotonic()
        return answer

    async def health():
        await asyncio.sleep(0.02)  # once the round has started
        answer = await send("GET", node.url + "/healthz")
        finished["health"] = time.monotonic()
        return answer

    # The round takes some 60 ms of CPU here: let the loop's thread take the interpreter
    # back every 0.5 ms instead of 5, so that a health check (a few turns of the loop)
    # fits in it. A round answered on the loop itself would still hold the check back.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(0.0005)
    try:
        reconciled, healthy = await asyncio.gather(reconcile(), health())
    finally:
        sys.setswitchinterval(interval)
    assert reconciled.status == 200 and healthy.status == 200
    assert finished["health"] < finished["reconcile"]


# --- Requests in flight --------------------------------------------------------------------------


async def test_requests_in_flight_are_bounded_per_node():
    bounds = PeerLimits(clock=time.monotonic)
    held = []
    for _ in range(limits.PEER_MAX_CONCURRENT_REQUESTS):
        entered = bounds.request(PEER.node_id)
        await entered.__aenter__()
        held.append(entered)
    with pytest.raises(TooManyRequests):
        async with bounds.request(PEER.node_id):
            pass
    async with bounds.request(OTHER_PEER.node_id):  # another node is not held back
        pass
    await held.pop().__aexit__(None, None, None)
    async with bounds.request(PEER.node_id):  # room again
        pass
    for entered in held:
        await entered.__aexit__(None, None, None)
    assert bounds.in_flight == {}


def test_a_429_is_a_reason_to_back_off_not_a_refusal():
    assert PeerRefused("busy", status=429, peer_code="too-many-requests").is_transient

