"""The departure vectors of docs/protocol-rights.md (section 6) agree with the code,
and its limits table holds the limits the code has."""

from __future__ import annotations

import re

import pytest

from protocol import limits
from protocol.departure import (
    MAX_DEPARTURE_BODY_BYTES,
    Departure,
    decode_departure,
    decode_departure_answer,
    encode_departure,
    encode_departure_answer,
)
from protocol.errors import ProtocolError
from protocol.identity import NodeKey
from tests.vector_blocks import DOCS, VectorKeys, read_vectors

VECTORS = read_vectors("protocol-rights.md", "departure-", VectorKeys(
    hex=frozenset({"conversation", "node", "body"}),
    json=frozenset({"left", "duplicate"}),
    text=frozenset({"vector", "kind", "handle", "error", "field"}),
))
INVALID = sorted(name for name in VECTORS if name.startswith("departure-invalid-"))


def notice_of(v: dict) -> Departure:
    return Departure(v["conversation"], v["node"], v["handle"], v["left"])


def test_the_spec_has_the_departure_vectors():
    assert {"departure-notice-1", "departure-answer-1"} <= set(VECTORS)
    assert len(INVALID) >= 5


def test_the_notice_vector_is_written_and_read_back_exactly():
    v = VECTORS["departure-notice-1"]
    assert encode_departure(notice_of(v)) == v["body"]
    assert decode_departure(v["body"]) == notice_of(v)
    assert v["node"] == NodeKey.from_seed(bytes(range(32, 64))).node_id


def test_the_answer_vector_is_written_and_read_back_exactly():
    v = VECTORS["departure-answer-1"]
    assert encode_departure_answer(v["duplicate"]) == v["body"]
    assert decode_departure_answer(v["body"]) is v["duplicate"]


@pytest.mark.parametrize("name", INVALID)
def test_an_invalid_vector_is_refused_with_its_code_and_field(name):
    v = VECTORS[name]
    with pytest.raises(ProtocolError) as refused:
        decode_departure(v["body"])
    assert (refused.value.code, refused.value.field) == (v["error"], v["field"])


def test_the_longest_notice_fits_and_the_limits_table_says_the_values():
    longest = Departure(bytes(16), bytes(32), "a" * limits.MAX_HANDLE_CHARS, limits.MAX_TIMESTAMP)
    assert len(encode_departure(longest)) <= MAX_DEPARTURE_BODY_BYTES
    text = (DOCS / "protocol-rights.md").read_text("utf-8")
    for name, value in (("MAX_DEPARTURE_BODY_BYTES", MAX_DEPARTURE_BODY_BYTES),
                        ("CONVERSATION_KEY_BYTES", limits.CONVERSATION_KEY_BYTES)):  # fmt: skip
        assert re.search(rf"^\| `{name}` \| {value} \|", text, re.MULTILINE), name
