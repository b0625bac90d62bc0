"""The block notice vectors of docs/protocol-safety.md (section 6) agree with the code.

Each fenced block whose first line is ``vector: block-<name>`` is read as the
document says: ``key: value`` lines, continuation lines (two spaces) appended
to the hex value before, each value read by its key.
"""

from __future__ import annotations

import pytest

from protocol import limits
from protocol.blocks import (
    BlockNotice,
    decode_block,
    decode_block_answer,
    encode_block,
    encode_block_answer,
)
from protocol.errors import ProtocolError
from protocol.identity import NodeKey
from tests.vector_blocks import DOCS, VectorKeys, read_vectors

VECTORS = read_vectors("protocol-safety.md", "block-", VectorKeys(
    hex=frozenset({"node", "body"}),
    json=frozenset({"blocked", "at", "applied"}),
    text=frozenset({"vector", "kind", "from", "to", "error", "field"}),
))
NOTICES = sorted(name for name in VECTORS if name.startswith("block-notice-"))
INVALID = sorted(name for name in VECTORS if name.startswith("block-invalid-"))


def notice_of(v: dict) -> BlockNotice:
    return BlockNotice(v["node"], v["from"], v["to"], v["blocked"], v["at"])


def test_the_spec_has_the_block_vectors():
    assert {"block-notice-1", "block-notice-2", "block-answer-1"} <= set(VECTORS)
    assert len(INVALID) >= 6


@pytest.mark.parametrize("name", NOTICES)
def test_a_notice_vector_is_written_and_read_back_exactly(name):
    v = VECTORS[name]
    assert encode_block(notice_of(v)) == v["body"]
    assert decode_block(v["body"]) == notice_of(v)


def test_the_notices_come_from_the_identity_vectors_node_and_both_ways():
    assert VECTORS["block-notice-1"]["node"] == NodeKey.from_seed(bytes(range(32))).node_id
    assert (VECTORS["block-notice-1"]["blocked"], VECTORS["block-notice-2"]["blocked"]) == (
        True, False)


def test_the_answer_vector_is_written_and_read_back_exactly():
    v = VECTORS["block-answer-1"]
    assert encode_block_answer(v["applied"]) == v["body"]
    assert decode_block_answer(v["body"]) is v["applied"]


@pytest.mark.parametrize("name", INVALID)
def test_an_invalid_vector_is_refused_with_its_code_and_field(name):
    v = VECTORS[name]
    with pytest.raises(ProtocolError) as refused:
        decode_block(v["body"])
    assert (refused.value.code, refused.value.field) == (v["error"], v["field"])


def test_the_limits_table_of_the_spec_holds_the_code_s_values():
    text = (DOCS / "protocol-safety.md").read_text("utf-8")
    for name in ("MAX_BLOCKS_PER_MEMBER", "PEER_MAX_BLOCKS", "MAX_BLOCK_BODY_BYTES"):
        assert f"| `{name}` | {getattr(limits, name)} |" in text, name


def test_the_largest_valid_notice_fits_its_body_limit():
    handle = limits.MAX_HANDLE_CHARS
    longest = BlockNotice(b"\xff" * 32, "a" * handle, "b" * handle, False, limits.MAX_TIMESTAMP)
    assert len(encode_block(longest)) <= limits.MAX_BLOCK_BODY_BYTES
    assert decode_block(encode_block(longest)) == longest
