"""The directory vectors of docs/protocol-federation.md section 11.7, written and read back.

The records are built from other documented vectors (docs/protocol.md's
``nodedoc-valid-1`` and ``succession-planned``), so a change to either shows here.
"""

from __future__ import annotations

import pytest

from protocol import directory as wire
from protocol.errors import ProtocolError
from protocol.nodedoc import open_node_document
from protocol.succession import open_succession
from tests.vector_blocks import VectorKeys, read_vectors

VECTORS = read_vectors("protocol-federation.md", "directory-", VectorKeys(
    hex=frozenset({"body", "answer", "answer_equal", "digest", "node_record_id",
                   "succession_record_id"}),
    json=frozenset({"accepted", "ignored"}),
    text=frozenset({"vector", "kind", "endpoint", "error", "field"}),
))
INVALID = sorted(name for name in VECTORS if name.startswith("directory-invalid-"))
NODEDOC = read_vectors("protocol.md", "nodedoc-valid-1", VectorKeys(
    hex=frozenset({"seed", "node_id", "signature"}),
    text=frozenset({"vector", "document", "signature_b64url"}),
))["nodedoc-valid-1"]
SUCCESSION = read_vectors("protocol.md", "succession-planned", VectorKeys(
    hex=frozenset({"seed", "old", "new", "body", "signature", "envelope", "id"}),
    json=frozenset({"issued"}), text=frozenset({"vector", "by"}),
))["succession-planned"]
DECODERS = {"nodes": wire.decode_nodes, "nodes-digest": wire.decode_digest,
            "nodes-fetch": wire.decode_fetch}  # fmt: skip


def node_record() -> wire.Record:
    served = {"document": NODEDOC["document"], "signature": NODEDOC["signature_b64url"]}
    return wire.Record(wire.NODE, NODEDOC["node_id"], served)


def succession_record() -> wire.Record:
    return wire.Record(wire.SUCCESSION, SUCCESSION["old"], {"envelope": SUCCESSION["envelope"]})


def test_the_document_has_the_directory_vectors():
    assert {"directory-push-1", "directory-push-answer-1", "directory-digest-1",
            "directory-fetch-1"} <= set(VECTORS)  # fmt: skip
    assert set(DECODERS) == {VECTORS[name]["endpoint"] for name in INVALID}


def test_the_records_open_as_the_documents_they_come_from():
    doc = open_node_document(node_record().payload)
    assert doc.node_id == NODEDOC["node_id"]
    opened = open_succession(SUCCESSION["envelope"], now=SUCCESSION["issued"],
                             recovery_of=lambda _old: None)  # fmt: skip
    assert opened.succession.old == succession_record().node_id


def test_the_push_vector_is_written_exactly_and_read_back():
    v = VECTORS["directory-push-1"]
    records = [node_record(), succession_record()]
    assert wire.encode_nodes(wire.record_value(r) for r in records) == v["body"]
    assert wire.encode_records(records) == v["body"]
    assert wire.decode_nodes(v["body"]) == [wire.record_value(r) for r in records]


def test_the_record_ids_are_as_given():
    v = VECTORS["directory-push-1"]
    assert node_record().id == v["node_record_id"]
    assert succession_record().id == v["succession_record_id"] == SUCCESSION["id"]


def test_a_packed_record_comes_back_as_its_value():
    for record in (node_record(), succession_record()):
        assert wire.unpack_record(wire.pack_record(record)) == wire.record_value(record)


def test_the_push_answer_vector():
    v = VECTORS["directory-push-answer-1"]
    outcome = wire.PushOutcome(v["accepted"], v["ignored"], ())
    assert wire.encode_nodes_outcome(outcome) == v["body"]
    assert wire.decode_nodes_outcome(v["body"]) == outcome


def test_the_digest_vector_is_the_digest_of_the_two_entries_in_any_order():
    v = VECTORS["directory-digest-1"]
    entries = [(r.kind, r.node_id, r.id) for r in (node_record(), succession_record())]
    assert wire.digest(entries) == wire.digest(reversed(entries)) == v["digest"]
    assert wire.encode_digest(v["digest"]) == v["body"]
    assert wire.decode_digest(v["body"]) == v["digest"]
    assert wire.encode_digest_answer(v["digest"], entries) == v["answer"]
    assert wire.decode_digest_answer(v["answer"]) == (v["digest"], entries)
    assert wire.encode_digest_answer(v["digest"], None) == v["answer_equal"]
    assert wire.decode_digest_answer(v["answer_equal"]) == (v["digest"], None)


def test_a_changed_record_changes_the_digest():
    entries = [(r.kind, r.node_id, r.id) for r in (node_record(), succession_record())]
    changed = [entries[0], (entries[1][0], entries[1][1], bytes(32))]
    assert wire.digest(changed) != wire.digest(entries)


def test_the_fetch_vector():
    v = VECTORS["directory-fetch-1"]
    keys = [(wire.NODE, NODEDOC["node_id"]), (wire.SUCCESSION, SUCCESSION["old"])]
    assert wire.encode_fetch(keys) == v["body"]
    assert wire.decode_fetch(v["body"]) == keys


@pytest.mark.parametrize("name", INVALID)
def test_an_invalid_vector_is_refused_with_its_code_and_field(name):
    v = VECTORS[name]
    with pytest.raises(ProtocolError) as refused:
        DECODERS[v["endpoint"]](v["body"])
    assert (refused.value.code, refused.value.field) == (v["error"], v["field"])
