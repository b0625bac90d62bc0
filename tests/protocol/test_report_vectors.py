"""The report vectors of docs/protocol-federation.md (section 9.5) agree with the code.

Each fenced block whose first line is ``vector: report-<name>`` is read as the
document says: ``key: value`` lines, continuation lines (two spaces) appended
to the hex value before, each value read by its key.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

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

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol-federation.md"
HEX_KEYS = frozenset({"key", "origin", "uid", "body"})
JSON_KEYS = frozenset({"details", "duplicate"})
TEXT_KEYS = frozenset({"vector", "kind", "reason", "error", "field"})

_FENCE = re.compile(r"^```[^\n]*\n(vector: report-.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_LINE = re.compile(r"([a-z][a-z0-9_]*): (.*)")


def parse_block(block: str) -> dict[str, object]:
    raw: dict[str, str] = {}
    last = None
    for line in block.splitlines():
        if line.startswith("  ") and last in HEX_KEYS:
            raw[last] += line.strip()
            continue
        key, value = _LINE.fullmatch(line).groups()
        assert key not in raw, f"{key!r} given twice"
        raw[key], last = value, key
    return {key: _read(key, value) for key, value in raw.items()}


def _read(key: str, value: str) -> object:
    if key in HEX_KEYS:
        assert re.fullmatch(r"(?:[0-9a-f]{2})*", value), f"{key} is not lowercase hex"
        return bytes.fromhex(value)
    if key in JSON_KEYS:
        return json.loads(value)
    assert key in TEXT_KEYS, f"unknown key {key!r}"
    return value


VECTORS = {v["vector"]: v for v in map(parse_block, _FENCE.findall(DOC.read_text("utf-8")))}
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
