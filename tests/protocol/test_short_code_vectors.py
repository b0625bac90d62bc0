"""The short code vectors of docs/protocol-sheet.md (section 6) agree with the code.

``code-*`` vectors give an annonce's origin and uid, the digest's first bytes,
their 25-bit value and the code; ``typed-*`` vectors give what a person typed
(a JSON string) and the code it means, or the reason it is refused.
"""

from __future__ import annotations

import hashlib

import pytest

from protocol.identity import NodeKey
from protocol.short_code import CODE_DOMAIN, BadShortCode, normalise_code, short_code
from tests.vector_blocks import VectorKeys, read_vectors

KEYS = VectorKeys(
    hex=frozenset({"origin", "uid", "bits"}),
    json=frozenset({"typed", "value"}),
    text=frozenset({"code", "reason"}),
)
CODES = read_vectors("protocol-sheet.md", "code-", KEYS)
TYPED = read_vectors("protocol-sheet.md", "typed-", KEYS)


def test_the_spec_has_the_vectors():
    assert len(CODES) >= 4
    assert len([n for n in TYPED if n.startswith("typed-invalid-")]) >= 5
    assert len([n for n in TYPED if not n.startswith("typed-invalid-")]) >= 4


def test_the_domain_is_the_one_the_spec_spells_out():
    assert CODE_DOMAIN.hex() == "74726f632f73686f72742d636f64652f763100"


def test_the_code_vectors_come_from_the_identity_vectors_nodes():
    assert CODES["code-a-1"]["origin"] == NodeKey.from_seed(bytes(range(32))).node_id
    assert CODES["code-b-1"]["origin"] == NodeKey.from_seed(bytes(range(32, 64))).node_id


@pytest.mark.parametrize("name", sorted(CODES))
def test_each_code_vector(name):
    v = CODES[name]
    digest = hashlib.sha256(CODE_DOMAIN + v["origin"] + v["uid"]).digest()
    assert digest[:4] == v["bits"]
    assert int.from_bytes(v["bits"], "big") >> 7 == v["value"]
    assert short_code(v["origin"], v["uid"]) == v["code"]


@pytest.mark.parametrize("name", sorted(TYPED))
def test_each_typed_vector(name):
    v = TYPED[name]
    if "code" in v:
        assert normalise_code(v["typed"]) == v["code"]
    else:
        with pytest.raises(BadShortCode) as refused:
            normalise_code(v["typed"])
        assert refused.value.reason == v["reason"]
