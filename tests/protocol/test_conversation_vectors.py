"""The private message vectors of docs/protocol-federation.md (section 8.6) agree with the code.

Each fenced block whose first line is ``vector: conversation-<name>`` is read
as the document says: ``key: value`` lines, continuation lines (two spaces)
appended to the hex value before, each value read by its key.
"""

from __future__ import annotations

import pytest

from protocol.conversations import (
    PrivateMessage,
    decode_message_answer,
    decode_private_message,
    encode_message_answer,
    encode_private_message,
)
from protocol.errors import ProtocolError
from protocol.identity import NodeKey
from tests.vector_blocks import VectorKeys, read_vectors

VECTORS = read_vectors("protocol-federation.md", "conversation-", VectorKeys(
    hex=frozenset({"conversation", "origin", "uid", "node", "id", "body"}),
    json=frozenset({"text", "sent", "duplicate", "desk"}),
    text=frozenset({"vector", "kind", "to", "from", "name", "error", "field"}),
))
INVALID = sorted(name for name in VECTORS if name.startswith("conversation-invalid-"))


def message_of(v: dict) -> PrivateMessage:
    return PrivateMessage(
        conversation=v["conversation"], annonce_origin=v["origin"], annonce_uid=v["uid"],
        recipient=v["to"], sender_handle=v["from"], sender_name=v["name"], sender_node=v["node"],
        message_id=v["id"], text=v["text"], sent_at=v["sent"], desk=v.get("desk", False),
    )  # fmt: skip


def test_the_spec_has_the_conversation_vectors():
    assert {"conversation-message-1", "conversation-answer-1"} <= set(VECTORS)
    assert len(INVALID) >= 5


def test_the_message_vector_is_written_and_read_back_exactly():
    v = VECTORS["conversation-message-1"]
    assert encode_private_message(message_of(v)) == v["body"]
    assert decode_private_message(v["body"]) == message_of(v)


def test_the_desk_vector_is_written_and_read_back_exactly():
    v = VECTORS["conversation-message-desk"]
    assert v["desk"] is True
    assert encode_private_message(message_of(v)) == v["body"]
    assert decode_private_message(v["body"]) == message_of(v)
    without = encode_private_message(message_of({**v, "desk": False}))
    assert b"desk" not in without and decode_private_message(without).desk is False


def test_the_message_vector_comes_from_the_identity_vectors_nodes():
    v = VECTORS["conversation-message-1"]
    assert v["origin"] == NodeKey.from_seed(bytes(range(32))).node_id
    assert v["node"] == NodeKey.from_seed(bytes(range(32, 64))).node_id


def test_the_answer_vector_is_written_and_read_back_exactly():
    v = VECTORS["conversation-answer-1"]
    assert encode_message_answer(v["duplicate"]) == v["body"]
    assert decode_message_answer(v["body"]) is v["duplicate"]


@pytest.mark.parametrize("name", INVALID)
def test_an_invalid_vector_is_refused_with_its_code_and_field(name):
    v = VECTORS[name]
    with pytest.raises(ProtocolError) as refused:
        decode_private_message(v["body"])
    assert (refused.value.code, refused.value.field) == (v["error"], v["field"])
