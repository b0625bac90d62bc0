"""The test vectors of docs/protocol.md (section 11) agree with the code.

Each fenced block whose first line is ``vector: <name>`` is parsed with the
rules the document gives: ``key: value`` lines, continuation lines starting
with two spaces appended to the previous value, and each value read by its
key (hex bytes, one JSON value, or text as is).

- ``identity-*``: node id, its text form and fingerprint from the seed;
- ``annonce-valid-*``: the revision rebuilt from seed and fields signs to the
  exact body, signature, envelope and id, and the envelope opens to it;
- ``annonce-invalid-*``: the envelope is refused with the given code and field
  (with ``accept_envelope`` at ``now`` when the vector gives one);
- ``nodedoc-*``: the document signs to the given signature and opens.
"""

from __future__ import annotations

import json

import pytest

from protocol.annonce import Annonce, Category, Kind, Photo, Point, State
from protocol.envelope import accept_envelope, open_envelope, sign_annonce
from protocol.errors import ProtocolError
from protocol.identity import NodeKey, b64url_decode, b64url_encode
from protocol.nodedoc import (
    NODEDOC_DOMAIN,
    NodeDocument,
    open_node_document,
    sign_node_document,
)
from tests import vector_blocks
from tests.vector_blocks import VectorKeys, read_vectors

HEX_KEYS = frozenset(
    {"seed", "node_id", "origin", "uid", "body", "signature", "envelope", "id"}
)
JSON_KEYS = frozenset(
    {
        "rev",
        "kind",
        "category",
        "title",
        "text",
        "lang",
        "commune",
        "point",
        "handle",
        "name",
        "created",
        "updated",
        "expires",
        "state",
        "sortie_at",
        "now",
        "photo_1",
        "photo_2",
        "photo_3",
        "photo_4",
    }
)
TEXT_KEYS = frozenset(
    {
        "vector",
        "node_id_text",
        "fingerprint",
        "document",
        "signature_b64url",
        "error",
        "field",
    }
)
PREFIXES = ("identity-", "annonce-valid-", "annonce-invalid-", "nodedoc-")
# Read by tests/protocol/test_succession_vectors.py, with keys of their own.
OTHER_PREFIXES = ("succession-",)

KEYS = VectorKeys(hex=HEX_KEYS, json=JSON_KEYS, text=TEXT_KEYS)


def parse_block(block: str) -> dict[str, object]:
    return vector_blocks.parse_block(block, KEYS)


VECTORS = {name: vector for prefix in PREFIXES
           for name, vector in read_vectors("protocol.md", prefix, KEYS).items()}  # fmt: skip


def named(prefix: str) -> list[str]:
    return sorted(name for name in VECTORS if name.startswith(prefix))


def annonce_from(v: dict) -> Annonce:
    point = v["point"]
    return Annonce(
        origin=v["origin"],
        uid=v["uid"],
        rev=v["rev"],
        kind=Kind(v["kind"]),
        category=Category(v["category"]),
        title=v["title"],
        text=v["text"],
        lang=v["lang"],
        commune=v["commune"],
        point=None if point is None else Point(*point),
        author_handle=v["handle"],
        author_name=v["name"],
        created=v["created"],
        updated=v["updated"],
        expires=v["expires"],
        state=State(v["state"]),
        sortie_at=v["sortie_at"],
        photos=tuple(
            Photo(bytes.fromhex(p["sha256"]), p["size"], p["width"], p["height"], p["alt"])
            for p in (v[f"photo_{rank}"] for rank in range(1, 5) if f"photo_{rank}" in v)
        ),
    )


# --- The parser and the document ------------------------------------------------------------


def test_the_spec_has_every_required_vector():
    required = {
        "identity-1",
        "annonce-valid-1",
        "annonce-valid-2",
        "annonce-valid-tombstone",
        "nodedoc-valid-1",
        "annonce-invalid-bad-signature",
        "annonce-invalid-origin-mismatch",
        "annonce-invalid-title-too-long",
        "annonce-invalid-lifetime-over-90-days",
        "annonce-invalid-unknown-category",
        "annonce-invalid-truncated",
        "annonce-invalid-created-in-the-future",
        "annonce-invalid-expired",
        "annonce-valid-photos",
        "annonce-invalid-too-many-photos",
        "annonce-invalid-photo-hash-length",
        "annonce-invalid-photo-alt-too-long",
        "annonce-invalid-photos-on-tombstone",
        "annonce-invalid-empty-photos",
    }
    assert required <= set(VECTORS)


def test_every_vector_name_has_a_known_prefix():
    names = vector_blocks.vector_names("protocol.md")
    assert names and [n for n in names if not n.startswith(PREFIXES + OTHER_PREFIXES)] == []


def test_parser_joins_continuation_lines_of_hex_values():
    vector = parse_block("vector: x\nbody: 0a0b\n  0c\n  0d0e\nid: ff")
    assert vector == {"vector": "x", "body": b"\x0a\x0b\x0c\x0d\x0e", "id": b"\xff"}


def test_parser_reads_json_values_and_text_as_is():
    vector = parse_block(
        'vector: y\ntext: "a\\u202fb\\nc"\npoint: [4420, 62]\n'
        "commune: null\nfield: -\nrev: 3"
    )
    assert vector == {
        "vector": "y",
        "text": "a\u202fb\nc",
        "point": [4420, 62],
        "commune": None,
        "field": "-",
        "rev": 3,
    }


@pytest.mark.parametrize(
    "block",
    [
        "vector: x\ntitle: not json",
        "vector: x\nbody: ABCD",
        "vector: x\nbody: abc",
        "vector: x\nprice: 1",
        'vector: x\ntext: "a"\n  "b"',
        "vector: x\nno colon",
        "vector: x\nid: 00\nid: 00",
    ],
)
def test_parser_refuses_malformed_vectors(block):
    with pytest.raises(ValueError):
        parse_block(block)


# --- Identity --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", named("identity-"))
def test_identity_vector(name):
    v = VECTORS[name]
    key = NodeKey.from_seed(v["seed"])
    assert key.node_id == v["node_id"]
    assert key.node_id_text == v["node_id_text"]
    assert key.fingerprint == v["fingerprint"]


# --- Valid annonces ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", named("annonce-valid-"))
def test_valid_annonce_vector_signs_to_the_exact_bytes(name):
    v = VECTORS[name]
    key = NodeKey.from_seed(v["seed"])
    assert key.node_id == v["node_id"] == v["origin"]
    assert key.fingerprint == v["fingerprint"]
    signed = sign_annonce(key, annonce_from(v))
    assert signed.body.hex() == v["body"].hex()
    assert signed.signature.hex() == v["signature"].hex()
    assert signed.envelope.hex() == v["envelope"].hex()
    assert signed.id.hex() == v["id"].hex()


@pytest.mark.parametrize("name", named("annonce-valid-"))
def test_valid_annonce_vector_envelope_opens_to_its_fields(name):
    v = VECTORS[name]
    opened = accept_envelope(v["envelope"], v["updated"])
    assert opened.annonce == annonce_from(v)
    assert (opened.id, opened.body, opened.signature) == (
        v["id"],
        v["body"],
        v["signature"],
    )


# --- Invalid annonces -------------------------------------------------------------------------


@pytest.mark.parametrize("name", named("annonce-invalid-"))
def test_invalid_annonce_vector_is_refused_with_its_code_and_field(name):
    v = VECTORS[name]
    with pytest.raises(ProtocolError) as info:
        if "now" in v:
            accept_envelope(v["envelope"], v["now"])
        else:
            open_envelope(v["envelope"])
    expected_field = None if v["field"] == "-" else v["field"]
    assert (info.value.code, info.value.field) == (v["error"], expected_field)


@pytest.mark.parametrize(
    "name", [n for n in named("annonce-invalid-") if "now" in VECTORS[n]]
)
def test_clock_vectors_are_otherwise_valid(name):
    """Refused for the time alone: the same envelope opens without a clock."""
    open_envelope(VECTORS[name]["envelope"])


# --- Node document ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", named("nodedoc-valid-"))
def test_node_document_vector(name):
    v = VECTORS[name]
    key = NodeKey.from_seed(v["seed"])
    assert key.node_id == v["node_id"]
    text = v["document"]
    signature = key.sign(NODEDOC_DOMAIN + text.encode("utf-8"))
    assert signature == v["signature"] == b64url_decode(v["signature_b64url"])
    assert b64url_encode(signature) == v["signature_b64url"]
    doc = open_node_document({"document": text, "signature": v["signature_b64url"]})
    assert doc == NodeDocument(**json.loads(text))
    assert (doc.id, doc.fingerprint) == (key.node_id_text, key.fingerprint)
    assert sign_node_document(key, doc) == {
        "document": text,
        "signature": v["signature_b64url"],
    }
