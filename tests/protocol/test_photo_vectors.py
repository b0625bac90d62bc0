"""The photo vectors of docs/protocol-federation.md (section 12.4) agree with protocol/photos.py."""

from __future__ import annotations

from urllib.parse import parse_qsl

import pytest

from protocol.errors import ProtocolError
from protocol.photos import check_photo_bytes, parse_photo_query, photo_request_target
from tests.vector_blocks import VectorKeys, read_vectors

KEYS = VectorKeys(hex=frozenset({"sha256", "data"}), json=frozenset({"size"}),
                  text=frozenset({"vector", "target", "query", "error", "field"}))  # fmt: skip
VECTORS = read_vectors("protocol-federation.md", "photo-", KEYS)


def named(prefix: str) -> list[str]:
    return sorted(name for name in VECTORS if name.startswith(prefix))


def test_the_document_has_the_photo_vectors():
    assert {"photo-request", "photo-answer-valid", "photo-answer-invalid-other-bytes",
            "photo-answer-invalid-longer",
            "photo-answer-invalid-shorter"} <= set(VECTORS)  # fmt: skip
    assert len(named("photo-query-invalid-")) >= 4


def test_the_request_target_and_its_query_read_back():
    v = VECTORS["photo-request"]
    assert photo_request_target(v["sha256"]) == v["target"]
    query = v["target"].split("?", 1)[1]
    assert parse_photo_query(parse_qsl(query, keep_blank_values=True)) == v["sha256"]


def test_the_valid_answer_is_accepted():
    v = VECTORS["photo-answer-valid"]
    check_photo_bytes(v["data"], sha256=v["sha256"], size=v["size"])


@pytest.mark.parametrize("name", named("photo-answer-invalid-"))
def test_each_invalid_answer_is_refused_with_its_code_and_field(name):
    v = VECTORS[name]
    with pytest.raises(ProtocolError) as info:
        check_photo_bytes(v["data"], sha256=v["sha256"], size=v["size"])
    assert (info.value.code, info.value.field) == (v["error"], v["field"])


@pytest.mark.parametrize("name", named("photo-query-invalid-"))
def test_each_invalid_query_is_refused(name):
    v = VECTORS[name]
    with pytest.raises(ProtocolError) as info:
        parse_photo_query(parse_qsl(v["query"], keep_blank_values=True))
    assert (info.value.code, info.value.field) == (v["error"], v["field"])


def test_a_hash_of_the_wrong_length_makes_no_request():
    with pytest.raises(ProtocolError):
        photo_request_target(b"\x00" * 31)
