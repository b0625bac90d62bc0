"""The report vectors of docs/protocol-federation.md (section 9.5) agree with the code.

Each fenced block whose first line is ``vector: report-<name>`` is read as the
document says: ``key: value`` lines, continuation lines (two spaces) appended
to the hex value before, each value read by its key.
"""

from __future__ import annotations

import pytest

from protocol.errors import ProtocolError
from protocol.identity import NodeKey
from protocol.reports import (
    ForwardedReport,
    decode_report,
    decode_report_answer,
    encode_report,
    encode_report_answer,
)
from tests.vector_blocks import VectorKeys, read_vectors

VECTORS = read_vectors("protocol-federation.md", "report-", VectorKeys(
    hex=frozenset({"key", "origin", "uid", "body"}),
    json=frozenset({"details", "duplicate"}),
    text=frozenset({"vector", "kind", "reason", "error", "field"}),
))
INVALID = sorted(name for name in VECTORS if name.startswith("report-invalid-"))


def report_of(v: dict) -> ForwardedReport:
    return ForwardedReport(v["key"], v["origin"], v["uid"], v["reason"], v["details"])


def test_the_spec_has_the_report_vectors():
    assert {"report-1", "report-answer-1"} <= set(VECTORS)
    assert len(INVALID) >= 4


def test_the_report_vector_is_written_and_read_back_exactly():
    v = VECTORS["report-1"]
    assert encode_report(report_of(v)) == v["body"]
    assert decode_report(v["body"]) == report_of(v)


def test_the_report_vector_is_about_an_annonce_of_the_identity_vectors_node():
    assert VECTORS["report-1"]["origin"] == NodeKey.from_seed(bytes(range(32))).node_id


def test_the_answer_vector_is_written_and_read_back_exactly():
    v = VECTORS["report-answer-1"]
    assert encode_report_answer(v["duplicate"]) == v["body"]
    assert decode_report_answer(v["body"]) is v["duplicate"]


@pytest.mark.parametrize("name", INVALID)
def test_an_invalid_vector_is_refused_with_its_code_and_field(name):
    v = VECTORS[name]
    with pytest.raises(ProtocolError) as refused:
        decode_report(v["body"])
    assert (refused.value.code, refused.value.field) == (v["error"], v["field"])
