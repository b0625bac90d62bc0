"""Hostile peers, through the real HTTP app: each gets its exact 4xx problem document,
and the database is left exactly as it was.

Every request here goes over loopback to a real node server, as a peer's would
(style.md habit 11: test the forgery through HTTP, not only the verifier).
"""

from __future__ import annotations

import msgpack
import pytest
from sqlalchemy import select

from protocol import federation as messages
from protocol.annonce import encode_body
from protocol.envelope import ANNONCE_DOMAIN, pack_envelope
from protocol.identity import NodeKey
from protocol.limits import FEDERATION_MAX_BODY_BYTES, REQUEST_SIGNATURE_WINDOW_S
from storage import peers as peer_store
from storage.schema import annonces, blocked_origins, destinations, outbox_items, peers
from tests.factories import NOW, make_annonce, make_signed
from tests.node.harness import Clock, make_nodes, send, signed_call, signed_headers

PEER = NodeKey.from_seed(b"\x61" * 32)  # an accepted peer
STRANGER = NodeKey.from_seed(b"\x62" * 32)  # a key nobody accepted
OTHER_ORIGIN = NodeKey.from_seed(b"\x63" * 32)
PROBLEM = "application/problem+json"


@pytest.fixture
async def victim(db, spare_db, tmp_path):
    (node,) = await make_nodes(db, spare_db, tmp_path, ["Victime"], Clock())
    await node.db.write(peer_store.add_peer, PEER.node_id, "http://127.0.0.1:9", "Pair", NOW)
    await node.start(background_tasks=False)
    await node.post("Une annonce déjà là")
    yield node
    await node.stop()


async def snapshot(node) -> dict:
    """Every row of every table federation could touch."""
    rows = {}
    async with node.db.engine.connect() as conn:
        for table in (annonces, outbox_items, peers, destinations, blocked_origins):
            result = await conn.execute(select(table))
            rows[table.name] = sorted(tuple(row) for row in result)
    return rows


def assert_problem(answer, status: int, code: str) -> dict:
    assert answer.status == status, answer.body[:300]
    assert answer.content_type == PROBLEM
    problem = answer.json()
    assert problem["code"] == code
    assert problem["status"] == status
    assert problem["type"] == f"urn:troc:problem:{code}"
    assert "Traceback" not in problem.get("detail", "")
    return problem


async def refused(victim, answer_coroutine, status: int, code: str) -> dict:
    before = await snapshot(victim)
    problem = assert_problem(await answer_coroutine, status, code)
    assert await snapshot(victim) == before
    return problem


def push_body(*envelopes: bytes) -> bytes:
    return messages.encode_push(envelopes)


# --- Request authentication -----------------------------------------------------


async def test_an_unsigned_request_is_refused(victim):
    body = push_body(make_signed(PEER).envelope)
    answer = send("POST", victim.url + messages.PUSH_PATH, body,
                  {"Content-Type": messages.CONTENT_TYPE})  # fmt: skip
    await refused(victim, answer, 401, "unauthenticated")


async def test_a_key_that_is_not_an_accepted_peer_is_refused(victim):
    body = push_body(make_signed(STRANGER).envelope)
    await refused(victim, signed_call(STRANGER, victim, messages.PUSH_PATH, body),
                  403, "unknown-key")  # fmt: skip


async def test_a_replayed_request_is_refused(victim):
    url = victim.url + messages.ANNOUNCE_PATH
    body = messages.encode_announce([b"\x01" * 32])
    headers = signed_headers(PEER, "POST", url, body)
    first = await send("POST", url, body, headers)
    assert first.status == 200
    await refused(victim, send("POST", url, body, headers), 401, "replayed")


async def test_a_body_that_does_not_match_its_content_digest_is_refused(victim):
    url = victim.url + messages.PUSH_PATH
    honest = push_body(make_signed(PEER).envelope)
    swapped = push_body(make_signed(PEER, title="Autre chose").envelope)
    headers = signed_headers(PEER, "POST", url, honest)
    await refused(victim, send("POST", url, swapped, headers), 401, "bad-digest")


@pytest.mark.parametrize(
    "offset", [-REQUEST_SIGNATURE_WINDOW_S - 60, REQUEST_SIGNATURE_WINDOW_S + 60]
)
async def test_a_signature_created_outside_the_window_is_refused(victim, offset):
    body = push_body(make_signed(PEER).envelope)
    answer = signed_call(PEER, victim, messages.PUSH_PATH, body, created=NOW + offset)
    await refused(victim, answer, 401, "stale-request")


async def test_a_request_signed_for_another_node_is_refused(victim):
    body = push_body(make_signed(PEER).envelope)
    url = "http://127.0.0.1:1" + messages.PUSH_PATH  # signed for another authority
    answer = send("POST", victim.url + messages.PUSH_PATH, body,
                  signed_headers(PEER, "POST", url, body))  # fmt: skip
    await refused(victim, answer, 401, "bad-signature")


async def test_a_body_that_is_not_msgpack_typed_is_refused(victim):
    body = push_body(make_signed(PEER).envelope)
    answer = signed_call(PEER, victim, messages.PUSH_PATH, body, content_type="application/json")
    await refused(victim, answer, 415, "unsupported-media-type")


# --- Bad annonces from an accepted peer -------------------------------------------


async def test_an_annonce_with_a_bad_signature_is_refused(victim):
    signed = make_signed(PEER)
    forged = pack_envelope(PEER.node_id, signed.body, bytes(64))
    problem = await refused(
        victim, signed_call(PEER, victim, messages.PUSH_PATH, push_body(forged)),
        422, "bad-signature",
    )  # fmt: skip
    assert problem["refused"] == [
        {"index": 0, "code": "bad-signature", "detail": problem["detail"], "field": None}
    ]


async def test_an_annonce_whose_origin_is_forged_is_refused(victim):
    """The peer signs a body that claims another origin."""
    body = encode_body(make_annonce(OTHER_ORIGIN))
    as_the_peer = pack_envelope(PEER.node_id, body, PEER.sign(ANNONCE_DOMAIN + body))
    in_the_name_of_the_origin = pack_envelope(
        OTHER_ORIGIN.node_id, body, PEER.sign(ANNONCE_DOMAIN + body)
    )
    for envelope in (as_the_peer, in_the_name_of_the_origin):
        answer = signed_call(PEER, victim, messages.PUSH_PATH, push_body(envelope))
        await refused(victim, answer, 422, "bad-signature")


async def test_an_annonce_dated_far_in_the_future_is_refused(victim):
    future = make_signed(PEER, now=NOW + 10 * 86400)
    answer = signed_call(PEER, victim, messages.PUSH_PATH, push_body(future.envelope))
    problem = await refused(victim, answer, 422, "from-the-future")
    assert problem["field"] == "created"


async def test_an_annonce_from_the_far_past_is_refused(victim):
    expired = make_signed(PEER, now=NOW - 100 * 86400)
    answer = signed_call(PEER, victim, messages.PUSH_PATH, push_body(expired.envelope))
    await refused(victim, answer, 422, "expired")


async def test_an_annonce_over_a_size_limit_is_refused(victim):
    too_long = make_annonce(PEER, title="x" * 121)
    body = encode_body(too_long)
    envelope = pack_envelope(PEER.node_id, body, PEER.sign(ANNONCE_DOMAIN + body))
    answer = signed_call(PEER, victim, messages.PUSH_PATH, push_body(envelope))
    problem = await refused(victim, answer, 413, "too-large")
    assert problem["field"] == "title"


async def test_one_bad_annonce_does_not_stop_the_good_ones_of_its_batch(victim):
    good = make_signed(PEER)
    bad = pack_envelope(PEER.node_id, make_signed(PEER).body, bytes(64))
    answer = await signed_call(PEER, victim, messages.PUSH_PATH, push_body(bad, good.envelope))
    assert answer.status == 200
    outcome = messages.decode_push_outcome(answer.body)
    assert outcome.accepted == 1
    assert [(r.index, r.code) for r in outcome.refused] == [(0, "bad-signature")]
    assert await victim.holds(good.id)


# --- Malformed and oversized messages ----------------------------------------------


@pytest.mark.parametrize(
    "path, body",
    [
        (messages.PUSH_PATH, b"\xc1"),  # a byte msgpack never uses
        (messages.PUSH_PATH, b"\x81\xa9envelopes"),  # truncated
        (messages.ANNOUNCE_PATH, msgpack.packb({"ids": [b"short"]})),
        (messages.ANNOUNCE_PATH, msgpack.packb({"ids": [], "more": 1})),
        (messages.FETCH_PATH, msgpack.packb([1, 2, 3])),
        (messages.RECONCILE_PATH, msgpack.packb({"message": "text, not bytes"})),
        (messages.PUSH_PATH, msgpack.packb({"envelopes": [b"\x93\xc0\xc0\xc0"]}) + b"\x00"),
    ],
    ids=["invalid-byte", "truncated", "short-id", "unknown-key", "not-a-map", "wrong-type",
         "trailing-bytes"],
)
async def test_a_malformed_message_is_refused(victim, path, body):
    await refused(victim, signed_call(PEER, victim, path, body), 400, "malformed")


async def test_deep_nesting_is_refused(victim):
    nested = b"\x81\xa3ids" + b"\x91" * 100_000 + b"\xc0"
    answer = signed_call(PEER, victim, messages.ANNOUNCE_PATH, nested)
    await refused(victim, answer, 400, "malformed")


async def test_a_malformed_reconciliation_message_is_refused(victim):
    body = messages.encode_reconcile(b"\x01\xff\xff")
    answer = signed_call(PEER, victim, messages.RECONCILE_PATH, body)
    await refused(victim, answer, 400, "bad-reconcile-message")


@pytest.mark.parametrize(
    "path, body",
    [
        (messages.ANNOUNCE_PATH, messages.encode_announce(
            i.to_bytes(32, "big") for i in range(10_000))),
        (messages.FETCH_PATH, messages.encode_fetch(
            i.to_bytes(32, "big") for i in range(10_000))),
        (messages.PUSH_PATH, messages.encode_push([b"\x00"] * 10_000)),
    ],
    ids=["announce", "fetch", "push"],
)
async def test_a_10000_item_batch_is_refused(victim, path, body):
    problem = await refused(victim, signed_call(PEER, victim, path, body), 413, "too-large")
    assert "at most" in problem["detail"]


async def test_a_body_over_the_limit_is_refused_from_its_length(victim):
    body = b"\x00" * (FEDERATION_MAX_BODY_BYTES + 1)
    answer = signed_call(PEER, victim, messages.PUSH_PATH, body)
    await refused(victim, answer, 413, "too-large")


async def test_a_body_over_the_limit_without_a_length_is_cut_off_unread(victim):
    """Sent chunked, 64 MiB: the node stops reading just past its limit and answers 413."""
    chunk = b"\x00" * 65536
    sent = []

    async def endless():
        for _ in range(1024):
            sent.append(len(chunk))
            yield chunk

    before = await snapshot(victim)
    answer = await send("POST", victim.url + messages.PUSH_PATH, endless(),
                        {"Content-Type": messages.CONTENT_TYPE})  # fmt: skip
    assert_problem(answer, 413, "too-large")
    assert sum(sent) < 16 * FEDERATION_MAX_BODY_BYTES
    assert await snapshot(victim) == before


async def test_the_node_keeps_answering_after_all_this(victim):
    await signed_call(PEER, victim, messages.PUSH_PATH, b"\xc1")
    health = await send("GET", victim.url + "/healthz")
    assert health.status == 200
