"""The key succession vectors of docs/protocol.md section 12.4, reproduced and opened."""

from __future__ import annotations

import pytest

from protocol.errors import ProtocolError
from protocol.identity import NodeKey
from protocol.succession import Succession, open_succession, sign_succession
from tests.vector_blocks import VectorKeys, read_vectors

KEYS = VectorKeys(hex=frozenset({"seed", "old", "body", "signature", "envelope", "id", "recovery"}),
                  json=frozenset({"issued"}),
                  text=frozenset({"vector", "new", "by", "error", "field"}))  # fmt: skip
VALID = read_vectors("protocol.md", "succession-", KEYS)
INVALID = {name: v for name, v in VALID.items() if name.startswith("succession-invalid-")}
VALID = {name: v for name, v in VALID.items() if name not in INVALID}


def test_the_document_has_vectors_of_each_kind():
    assert {"succession-planned", "succession-recovery", "succession-revoked"} <= set(VALID)
    assert len(INVALID) >= 2


def _new(vector) -> bytes | None:
    return None if vector["new"] == "-" else bytes.fromhex(vector["new"])


@pytest.mark.parametrize("name", sorted(VALID))
def test_a_valid_vector_is_reproduced_byte_for_byte_and_opens(name):
    v = VALID[name]
    s = Succession(v["old"], _new(v), v["issued"], v["by"])
    signed = sign_succession(NodeKey.from_seed(v["seed"]), s)
    assert (signed.body, signed.signature, signed.envelope, signed.id) == (
        v["body"], v["signature"], v["envelope"], v["id"])  # fmt: skip
    recovery = v.get("recovery")
    opened = open_succession(v["envelope"], now=v["issued"],
                             recovery_of=lambda old: recovery if old == v["old"] else None)  # fmt: skip
    assert opened.succession == s


@pytest.mark.parametrize("name", sorted(INVALID))
def test_an_invalid_vector_is_refused_with_its_code(name):
    v = INVALID[name]
    with pytest.raises(ProtocolError) as refused:
        open_succession(v["envelope"], now=1_790_000_000, recovery_of=lambda _old: None)
    assert refused.value.code == v["error"]
    assert (refused.value.field or "-") == v["field"]
