"""The federation test vectors of the spec agree with the code.

Vectors named ``federation-*`` are read from docs/protocol.md, or, while the
federation section lives in its own file, from docs/protocol-federation.md.
Each fenced block whose first line is ``vector: <name>`` is parsed as the
document says: ``key: value`` lines, continuation lines starting with two
spaces appended to the previous (hex) value, each value read by its key.

- message vectors: the writer produces ``body`` from the values, and the
  reader reads the values back from ``body``;
- ``federation-invalid-*``: the reader refuses ``body`` with ``error`` and ``field``;
- ``federation-signed-*``: ``sign_request`` reproduces the three fields, and
  ``verify_request`` accepts the request at ``created``.
"""

from __future__ import annotations

import pytest

from protocol import federation as messages
from protocol.envelope import open_envelope
from protocol.errors import ProtocolError
from protocol.httpsig import ReplayGuard, sign_request, verify_request
from protocol.identity import NodeKey
from tests.vector_blocks import VectorKeys, read_vectors

HEX_KEYS = frozenset({"body", "message", "seed"})
HEX_LIST_KEYS = frozenset({"ids", "envelopes"})
JSON_KEYS = frozenset({"accepted", "duplicates", "superseded", "blocked", "refused", "created"})
TEXT_KEYS = frozenset({
    "vector", "kind", "error", "field", "method", "url", "nonce", "content_type",
    "content_digest", "signature_input", "signature",
})  # fmt: skip

KEYS = VectorKeys(hex=HEX_KEYS, hex_list=HEX_LIST_KEYS, json=JSON_KEYS, text=TEXT_KEYS)

WRITERS = {
    "announce-request": lambda v: messages.encode_announce(v["ids"]),
    "announce-answer": lambda v: messages.encode_want(v["ids"]),
    "fetch-request": lambda v: messages.encode_fetch(v["ids"]),
    "push-request": lambda v: messages.encode_push(v["envelopes"]),
    "push-answer": lambda v: messages.encode_push_outcome(outcome_of(v)),
    "reconcile-request": lambda v: messages.encode_reconcile(v["message"]),
}
READERS = {
    "announce-request": messages.decode_announce,
    "announce-answer": messages.decode_want,
    "fetch-request": messages.decode_fetch,
    "fetch-answer": messages.decode_envelopes,
    "push-request": messages.decode_push,
    "push-answer": messages.decode_push_outcome,
    "reconcile-request": messages.decode_reconcile,
}


def outcome_of(v: dict) -> messages.PushOutcome:
    return messages.PushOutcome(
        v["accepted"], v["duplicates"], v["superseded"], v["blocked"],
        tuple(messages.ItemRefusal(**r) for r in v["refused"]),
    )  # fmt: skip


VECTORS = read_vectors(("protocol.md", "protocol-federation.md"), "federation-", KEYS)


def named(prefix: str) -> list[str]:
    return sorted(name for name in VECTORS if name.startswith(prefix))


MESSAGES = [n for n in VECTORS if not n.startswith(("federation-invalid-", "federation-signed-"))]


def test_the_spec_has_the_federation_vectors():
    assert {"federation-announce-request", "federation-push-request",
            "federation-push-answer", "federation-signed-announce"} <= set(VECTORS)  # fmt: skip
    assert len(named("federation-invalid-")) >= 5


@pytest.mark.parametrize("name", MESSAGES)
def test_a_message_vector_is_written_and_read_back_exactly(name):
    v = VECTORS[name]
    kind = v["kind"]
    if kind in WRITERS:
        assert WRITERS[kind](v) == v["body"]
    read = READERS[kind](v["body"])
    expected = {
        "push-answer": lambda: outcome_of(v),
        "push-request": lambda: v["envelopes"],
        "reconcile-request": lambda: v["message"],
    }.get(kind, lambda: v["ids"])()
    assert read == expected


def test_the_pushed_envelope_is_a_valid_signed_annonce():
    (envelope,) = VECTORS["federation-push-request"]["envelopes"]
    assert open_envelope(envelope).annonce.title == "Aide au jardin"


@pytest.mark.parametrize("name", named("federation-invalid-"))
def test_an_invalid_vector_is_refused_with_its_code_and_field(name):
    v = VECTORS[name]
    with pytest.raises(ProtocolError) as refused:
        READERS[v["kind"]](v["body"])
    assert refused.value.code == v["error"]
    assert (refused.value.field or "-") == v["field"]


@pytest.mark.parametrize("name", named("federation-signed-"))
def test_the_signed_request_is_reproduced_and_accepted(name):
    v = VECTORS[name]
    key = NodeKey.from_seed(v["seed"])
    headers = {"Content-Type": v["content_type"]}
    added = sign_request(key, v["method"], v["url"], headers, v["body"],
                         created=v["created"], nonce=v["nonce"])  # fmt: skip
    assert added == {
        "Content-Digest": v["content_digest"],
        "Signature-Input": v["signature_input"],
        "Signature": v["signature"],
    }
    verified = verify_request(
        v["method"], v["url"], {**headers, **added}, v["body"], now=v["created"],
        lookup_key=lambda key_id: key.node_id if key_id == key.node_id_text else None,
        replay_guard=ReplayGuard(),
    )  # fmt: skip
    assert verified.node_id == key.node_id
