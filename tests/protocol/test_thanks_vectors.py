"""The thanks vectors of docs/protocol-thanks.md (section 8) agree with the code.

Each fenced block whose first line is ``vector: thanks-<name>`` is read as
the document says; the limits of its section 6 are the code's.
"""

from __future__ import annotations

import re

import pytest

from node.thanks import THANKS_REVEAL_S
from protocol.annonce import Kind
from protocol.errors import ProtocolError
from protocol.identity import NodeKey
from protocol.thanks import (
    MAX_THANKS_BODY_BYTES,
    MAX_THANKS_CHARS,
    Exchange,
    Merci,
    acknowledge,
    decode_exchange_answer,
    decode_merci_answer,
    encode_exchange_answer,
    encode_merci_answer,
    open_exchange,
    open_merci,
    sign_exchange,
    sign_merci,
    verify_ack,
)
from tests.vector_blocks import DOCS, VectorKeys, read_vectors

VECTORS = read_vectors("protocol-thanks.md", "thanks-", VectorKeys(
    hex=frozenset({"conversation", "origin", "uid", "node", "signer", "statement", "signature",
                   "ack", "body"}),
    json=frozenset({"text", "at", "sent", "duplicate"}),
    text=frozenset({"vector", "message", "kind", "author", "other", "from", "error", "field"}),
))  # fmt: skip
INVALID = sorted(name for name in VECTORS if name.startswith("thanks-invalid-"))
IDENTITY_1 = NodeKey.from_seed(bytes(range(32)))
IDENTITY_2 = NodeKey.from_seed(bytes(range(32, 64)))


def test_the_spec_has_the_thanks_vectors():
    assert {"thanks-exchange-1", "thanks-exchange-answer-1", "thanks-merci-1",
            "thanks-merci-answer-1"} <= set(VECTORS)  # fmt: skip
    assert len(INVALID) >= 6


def test_the_exchange_vector_is_signed_and_read_back_exactly():
    v = VECTORS["thanks-exchange-1"]
    x = Exchange(v["conversation"], v["origin"], v["uid"], Kind(v["kind"]), v["author"],
                 v["other"], v["node"], v["at"])  # fmt: skip
    assert (v["origin"], v["node"]) == (IDENTITY_1.node_id, IDENTITY_2.node_id)
    signed = sign_exchange(IDENTITY_1, x)
    assert (signed.statement, signed.signature, signed.body) == (
        v["statement"], v["signature"], v["body"])  # fmt: skip
    assert open_exchange(v["body"]).record == x


def test_the_acknowledgement_is_the_other_nodes_signature_over_the_statement():
    statement = VECTORS["thanks-exchange-1"]["statement"]
    v = VECTORS["thanks-exchange-answer-1"]
    assert acknowledge(IDENTITY_2, statement) == v["ack"]
    verify_ack(IDENTITY_2.node_id, v["ack"], statement)
    with pytest.raises(ProtocolError):
        verify_ack(IDENTITY_1.node_id, v["ack"], statement)  # not the author's node's
    assert encode_exchange_answer(v["duplicate"], v["ack"]) == v["body"]
    assert decode_exchange_answer(v["body"]) == (v["duplicate"], v["ack"])


def test_the_merci_vector_is_signed_and_read_back_exactly():
    v = VECTORS["thanks-merci-1"]
    m = Merci(v["conversation"], v["origin"], v["uid"], v["from"], v["text"], v["sent"])
    assert v["signer"] == IDENTITY_2.node_id
    signed = sign_merci(IDENTITY_2, m)
    assert (signed.statement, signed.signature, signed.body) == (
        v["statement"], v["signature"], v["body"])  # fmt: skip
    opened = open_merci(v["body"])
    assert (opened.record, opened.signer) == (m, IDENTITY_2.node_id)


def test_the_merci_answer_vector_is_written_and_read_back_exactly():
    v = VECTORS["thanks-merci-answer-1"]
    assert encode_merci_answer(v["duplicate"]) == v["body"]
    assert decode_merci_answer(v["body"]) is v["duplicate"]


@pytest.mark.parametrize("name", INVALID)
def test_an_invalid_vector_is_refused_with_its_code_and_field(name):
    v = VECTORS[name]
    opener = open_exchange if v["message"] == "exchange-request" else open_merci
    with pytest.raises(ProtocolError) as refused:
        opener(v["body"])
    assert (refused.value.code, refused.value.field) == (v["error"], v.get("field"))


def test_the_limits_table_is_the_codes():
    text = (DOCS / "protocol-thanks.md").read_text("utf-8")
    table = dict(re.findall(r"^\| `([A-Z_]+)` \| (\d+) \|", text, re.MULTILINE))
    assert table == {"MAX_THANKS_CHARS": str(MAX_THANKS_CHARS),
                     "MAX_THANKS_BODY_BYTES": str(MAX_THANKS_BODY_BYTES),
                     "THANKS_REVEAL_S": str(THANKS_REVEAL_S)}  # fmt: skip


def test_the_longest_merci_fits_in_the_largest_body():
    longest = Merci(b"\x00" * 16, b"\x00" * 32, b"\x00" * 16, "a" * 32,
                    "\U0001f642" * MAX_THANKS_CHARS, 2**32 - 1)  # fmt: skip
    assert len(sign_merci(IDENTITY_2, longest).body) <= MAX_THANKS_BODY_BYTES
