"""The stream vectors of docs/protocol-federation.md (section 13.4) agree with protocol/stream.py."""

from __future__ import annotations

import pytest

from protocol import stream as frames
from protocol.errors import ProtocolError
from protocol.limits import STREAM_MAX_FRAME_BYTES
from tests.vector_blocks import VectorKeys, read_vectors

KEYS = VectorKeys(hex=frozenset({"frame", "body"}), hex_list=frozenset({"ids"}),
                  json=frozenset({"seq", "status", "want"}),
                  text=frozenset({"vector", "op", "kind", "error", "field"}))  # fmt: skip
VECTORS = read_vectors("protocol-federation.md", "stream-", KEYS)
READERS = {"request": frames.decode_request, "answer": frames.decode_answer}


def named(prefix: str) -> list[str]:
    return sorted(name for name in VECTORS if name.startswith(prefix))


def test_the_document_has_the_stream_vectors():
    assert {"stream-request-offer", "stream-answer-offer"} <= set(VECTORS)
    assert len(named("stream-invalid-")) >= 5
    assert len(named("stream-offer-invalid-")) >= 2


def test_a_request_is_written_and_read_back_byte_for_byte():
    v = VECTORS["stream-request-offer"]
    assert frames.encode_offer(v["ids"]) == v["body"]
    assert frames.decode_offer(v["body"]) == v["ids"]
    assert frames.encode_request(v["seq"], v["op"], v["body"]) == v["frame"]
    assert frames.decode_request(v["frame"]) == frames.StreamRequest(v["seq"], v["op"], v["body"])


def test_an_answer_is_written_and_read_back_byte_for_byte():
    v = VECTORS["stream-answer-offer"]
    assert frames.encode_offer_answer(v["want"]) == v["body"]
    offered = len(VECTORS["stream-request-offer"]["ids"])
    assert frames.decode_offer_answer(v["body"], offered) == v["want"]
    assert frames.encode_answer(v["seq"], v["status"], v["body"]) == v["frame"]
    assert frames.decode_answer(v["frame"]) == frames.StreamAnswer(v["seq"], v["status"], v["body"])


@pytest.mark.parametrize("name", named("stream-invalid-"))
def test_each_invalid_frame_is_refused_with_its_code_and_field(name):
    v = VECTORS[name]
    with pytest.raises(ProtocolError) as info:
        READERS[v["kind"]](v["frame"])
    expected_field = None if v["field"] == "-" else v["field"]
    assert (info.value.code, info.value.field) == (v["error"], expected_field)


@pytest.mark.parametrize("name", named("stream-offer-invalid-"))
def test_each_invalid_offer_is_refused_with_its_code_and_field(name):
    v = VECTORS[name]
    with pytest.raises(ProtocolError) as info:
        frames.decode_offer(v["body"])
    assert (info.value.code, info.value.field) == (v["error"], v["field"])


@pytest.mark.parametrize("answer", [[1, 0], [0, 0], [2], [-1], ["0"]])
def test_an_offer_answer_names_positions_in_the_offer_in_order(answer):
    body = frames.encode_offer_answer(answer)
    with pytest.raises(ProtocolError):
        frames.decode_offer_answer(body, 2)


def test_an_oversized_frame_is_refused_before_it_is_decoded():
    with pytest.raises(ProtocolError) as info:
        frames.decode_request(b"\x93" + b"\x00" * STREAM_MAX_FRAME_BYTES)
    assert info.value.code == "too-large"


def test_a_writer_refuses_an_op_a_stream_does_not_carry():
    with pytest.raises(ValueError):
        frames.encode_request(0, "announce", b"")
