"""The set reconciliation test vectors of the spec, checked against the code.

The vectors are parsed out of the specification itself, so the document and
protocol/reconcile.py cannot drift apart. They live in docs/protocol.md once
the reconciliation section is folded in there, in docs/protocol-reconcile.md
until then: the first of the two that holds `vector: reconcile-` blocks wins.
The limits table of that section is checked against protocol/limits.py too.
A line starting with two spaces continues the value above it, as in
docs/protocol.md, so long hex values may be wrapped when the section moves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from protocol import limits
from protocol.errors import ReconcileError
from protocol.reconcile import Reconciler, SortedItems, fingerprint_of, respond

DOCS = Path(__file__).resolve().parents[2] / "docs"
SPEC_CANDIDATES = (DOCS / "protocol.md", DOCS / "protocol-reconcile.md")
VECTOR_MARK = "vector: reconcile-"
REPEATED_FIELDS = ("item", "responder-item")
TUNING_FIELDS = {
    "buckets": "buckets",
    "id-list-threshold": "id_list_threshold",
    "frame-bytes": "frame_bytes",
}


@dataclass(frozen=True)
class Vector:
    name: str
    fields: dict[str, str]
    items: list[tuple[int, bytes]] = field(default_factory=list)
    responder_items: list[tuple[int, bytes]] = field(default_factory=list)

    def hex_field(self, name: str) -> bytes:
        return bytes.fromhex(self.fields[name])

    def tuning(self) -> dict[str, int]:
        return {
            keyword: int(self.fields[name])
            for name, keyword in TUNING_FIELDS.items()
            if name in self.fields
        }


def spec_text() -> str:
    for path in SPEC_CANDIDATES:
        if path.exists():
            text = path.read_text(encoding="utf-8")
            if VECTOR_MARK in text:
                return text
    pytest.fail(f"no {VECTOR_MARK}* vectors in {', '.join(str(p) for p in SPEC_CANDIDATES)}")


def fenced_blocks(text: str) -> list[list[str]]:
    blocks, current = [], None
    for line in text.splitlines():
        if line.startswith("```"):
            if current is None:
                current = []
            else:
                blocks.append(current)
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def parse_item(value: str) -> tuple[int, bytes]:
    ts, item_id = value.split(" ")
    return int(ts), bytes.fromhex(item_id)


def field_lines(lines: list[str]) -> list[tuple[str, str]]:
    """``name: value`` lines; one starting with two spaces continues the value above."""
    pairs: list[tuple[str, str]] = []
    for line in lines:
        if line.startswith("  ") and pairs:
            name, value = pairs[-1]
            pairs[-1] = (name, value + line.strip())
        elif line.strip():
            name, _, value = line.partition(": ")
            pairs.append((name, value))
    return pairs


def parse_vector(lines: list[str]) -> Vector:
    fields: dict[str, str] = {}
    repeated: dict[str, list[tuple[int, bytes]]] = {name: [] for name in REPEATED_FIELDS}
    for name, value in field_lines(lines):
        if name in repeated:
            repeated[name].append(parse_item(value))
        else:
            assert name not in fields, f"field {name!r} given twice"
            fields[name] = value
    return Vector(fields["vector"], fields, repeated["item"], repeated["responder-item"])


def load_vectors() -> list[Vector]:
    blocks = fenced_blocks(spec_text())
    return [parse_vector(block) for block in blocks if block and block[0].startswith(VECTOR_MARK)]


VECTORS = load_vectors()


def vectors_with(*names: str, without: tuple[str, ...] = ()) -> list[Vector]:
    chosen = [
        v
        for v in VECTORS
        if all(n in v.fields for n in names) and not any(n in v.fields for n in without)
    ]
    return chosen


def ids(vectors: list[Vector]) -> list[str]:
    return [vector.name for vector in vectors]


def test_the_spec_has_every_kind_of_vector():
    names = ids(VECTORS)
    assert len(names) == len(set(names)), "vector names are unique"
    for kind in ("fingerprint", "initiate", "respond", "malformed"):
        assert any(name.startswith(f"reconcile-{kind}-") for name in names), kind


FINGERPRINTS = vectors_with("fingerprint")


@pytest.mark.parametrize("vector", FINGERPRINTS, ids=ids(FINGERPRINTS))
def test_fingerprint_vectors(vector: Vector):
    assert fingerprint_of(vector.items) == vector.hex_field("fingerprint")


FIRST_MESSAGES = vectors_with("message", without=("reply", "error"))


@pytest.mark.parametrize("vector", FIRST_MESSAGES, ids=ids(FIRST_MESSAGES))
def test_first_message_vectors(vector: Vector):
    initiator = Reconciler(SortedItems(vector.items), **vector.tuning())
    assert initiator.initiate().hex() == vector.fields["message"]


ANSWERS = vectors_with("message", "reply")


@pytest.mark.parametrize("vector", ANSWERS, ids=ids(ANSWERS))
def test_responder_answer_vectors(vector: Vector):
    responder_items = SortedItems(vector.responder_items)
    assert (
        respond(responder_items, vector.hex_field("message"), **vector.tuning()).hex()
        == vector.fields["reply"]
    )


MALFORMED = vectors_with("message", "error")


@pytest.mark.parametrize("vector", MALFORMED, ids=ids(MALFORMED))
def test_malformed_vectors_are_refused_by_the_responder(vector: Vector):
    with pytest.raises(ReconcileError) as refused:
        respond(SortedItems(vector.responder_items), vector.hex_field("message"))
    assert refused.value.code == vector.fields["error"]
    if "reason" in vector.fields:
        assert refused.value.detail == vector.fields["reason"]


@pytest.mark.parametrize("vector", MALFORMED, ids=ids(MALFORMED))
def test_malformed_vectors_are_refused_by_the_initiator(vector: Vector):
    initiator = Reconciler(SortedItems(vector.items))
    initiator.initiate()
    with pytest.raises(ReconcileError) as refused:
        initiator.reconcile(vector.hex_field("message"))
    assert refused.value.code == vector.fields["error"]


LIMIT_ROW = re.compile(r"^\|\s*`(RECONCILE_[A-Z0-9_]+)`\s*\|\s*([0-9]+)\s*\|", re.MULTILINE)


def test_the_limits_table_matches_protocol_limits():
    documented = {name: int(value) for name, value in LIMIT_ROW.findall(spec_text())}
    in_code = {name: getattr(limits, name) for name in dir(limits) if name.startswith("RECONCILE_")}
    assert documented == in_code
