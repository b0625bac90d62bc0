"""The request-signature test vectors of the specification, checked against the code.

The vectors are read from the documentation itself, so that the text a second
implementation is written from and the code cannot drift apart: from
docs/protocol.md if it holds them, otherwise from docs/protocol-httpsig.md.
Each is a fenced block whose first line is ``vector: httpsig-<name>``; the
format is described in the "Test vectors" part of that section.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from protocol.errors import RequestAuthError
from protocol.httpsig import (
    ReplayGuard,
    create_signature,
    read_signature,
    sign_request,
    signature_base,
    verify_message_signature,
    verify_request,
)
from protocol.identity import NodeKey, b64url_decode

DOCS = Path(__file__).resolve().parents[2] / "docs"
SOURCES = (DOCS / "protocol.md", DOCS / "protocol-httpsig.md")
VECTOR_PREFIX = "vector: httpsig-"
FENCED_BLOCK = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
REPEATABLE = frozenset({"header"})


@dataclass(frozen=True)
class Vector:
    name: str
    fields: dict[str, str]
    headers: tuple[tuple[str, str], ...]

    def __getitem__(self, name: str) -> str:
        return self.fields[name]

    @property
    def body(self) -> bytes:
        return bytes.fromhex(self.fields.get("body-hex", ""))


def parse_vector(block: str) -> Vector:
    lines = block.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the newline before the closing fence
    name = lines[0].removeprefix("vector: ")
    fields: dict[str, str] = {}
    headers: list[tuple[str, str]] = []
    for index, line in enumerate(lines[1:], start=1):
        key, separator, value = line.partition(": ")
        if not separator and line.endswith(":"):
            # A multi-line field: every following line, verbatim, no final newline.
            fields[line[:-1]] = "\n".join(lines[index + 1 :])
            break
        assert separator, f"{name}: not a 'name: value' line: {line!r}"
        if key in REPEATABLE:
            header_name, _, header_value = value.partition(": ")
            headers.append((header_name, header_value))
        else:
            assert key not in fields, f"{name}: {key} given twice"
            fields[key] = value
    return Vector(name, fields, tuple(headers))


def load_vectors() -> dict[str, Vector]:
    for source in SOURCES:
        if not source.exists():
            continue
        blocks = [
            block
            for block in FENCED_BLOCK.findall(source.read_text())
            if block.startswith(VECTOR_PREFIX)
        ]
        if blocks:
            vectors = [parse_vector(block) for block in blocks]
            names = [vector.name for vector in vectors]
            assert len(set(names)) == len(names), f"a vector name repeats in {source}"
            return {vector.name: vector for vector in vectors}
    pytest.fail(f"no httpsig test vectors in {' or '.join(map(str, SOURCES))}")


VECTORS = load_vectors()
REFUSED = sorted(name for name in VECTORS if name.startswith("httpsig-refused-"))


def test_the_expected_vectors_are_documented():
    assert {"httpsig-rfc9421-b26", "httpsig-troc-request"} <= set(VECTORS)
    assert REFUSED, "at least one refused request"


# --- RFC 9421 B.2.6 -----------------------------------------------------------


def rfc_vector_headers(vector: Vector) -> list[tuple[str, str]]:
    return list(vector.headers) + [
        ("Signature-Input", vector["signature-input"]),
        ("Signature", vector["signature"]),
    ]


def test_rfc_vector_base():
    vector = VECTORS["httpsig-rfc9421-b26"]
    headers = rfc_vector_headers(vector)
    received = read_signature(headers, vector["label"])
    assert (
        signature_base(vector["method"], vector["url"], headers, received.params)
        == (vector["signature-base"])
    )


def test_rfc_vector_verifies():
    vector = VECTORS["httpsig-rfc9421-b26"]
    public_key = b64url_decode(vector["public-key-b64url"])
    verify_message_signature(
        vector["method"], vector["url"], rfc_vector_headers(vector),
        label=vector["label"], public_key=public_key,
    )  # fmt: skip
    # And independently of our code: the signature over the documented base.
    signature = base64.b64decode(vector["signature"].split("=", 1)[1].strip(":"))
    Ed25519PublicKey.from_public_bytes(public_key).verify(
        signature, vector["signature-base"].encode("ascii")
    )


def test_rfc_vector_is_reproduced_from_the_private_key():
    vector = VECTORS["httpsig-rfc9421-b26"]
    key = NodeKey.from_seed(b64url_decode(vector["private-seed-b64url"]))
    assert key.node_id == b64url_decode(vector["public-key-b64url"])
    received = read_signature(rfc_vector_headers(vector), vector["label"])
    added = create_signature(
        key, vector["method"], vector["url"], list(vector.headers), received.params,
        label=vector["label"],
    )  # fmt: skip
    assert added == {
        "Signature-Input": vector["signature-input"],
        "Signature": vector["signature"],
    }


# --- A Troc request -----------------------------------------------------------


def troc_vector_key(vector: Vector) -> NodeKey:
    return NodeKey.from_seed(bytes.fromhex(vector["seed-hex"]))


def test_troc_vector_is_what_sign_request_produces():
    vector = VECTORS["httpsig-troc-request"]
    key = troc_vector_key(vector)
    assert key.node_id_text == vector["key-id"]
    added = sign_request(
        key, vector["method"], vector["url"], dict(vector.headers), vector.body,
        created=int(vector["created"]), nonce=vector["nonce"],
    )  # fmt: skip
    assert added == {
        "Content-Digest": vector["content-digest"],
        "Signature-Input": vector["signature-input"],
        "Signature": vector["signature"],
    }


def troc_vector_request_headers(vector: Vector) -> list[tuple[str, str]]:
    return list(vector.headers) + [
        ("Content-Digest", vector["content-digest"]),
        ("Signature-Input", vector["signature-input"]),
        ("Signature", vector["signature"]),
    ]


def test_troc_vector_base():
    vector = VECTORS["httpsig-troc-request"]
    headers = troc_vector_request_headers(vector)
    received = read_signature(headers, "troc")
    assert (
        signature_base(vector["method"], vector["url"], headers, received.params)
        == (vector["signature-base"])
    )


def test_troc_vector_independently_of_our_code():
    vector = VECTORS["httpsig-troc-request"]
    digest = base64.b64encode(hashlib.sha256(vector.body).digest()).decode()
    assert vector["content-digest"] == f"sha-256=:{digest}:"
    signature = base64.b64decode(vector["signature"].removeprefix("troc=").strip(":"))
    Ed25519PublicKey.from_public_bytes(troc_vector_key(vector).node_id).verify(
        signature, vector["signature-base"].encode("ascii")
    )


def test_troc_vector_is_accepted():
    vector = VECTORS["httpsig-troc-request"]
    key = troc_vector_key(vector)
    verified = verify_request(
        vector["method"], vector["url"], troc_vector_request_headers(vector), vector.body,
        now=int(vector["now"]),
        lookup_key={key.node_id_text: key.node_id}.get,
        replay_guard=ReplayGuard(),
    )  # fmt: skip
    assert verified.key_id == vector["key-id"]
    assert verified.created == int(vector["created"])
    assert verified.nonce == vector["nonce"]


# --- Refused requests ---------------------------------------------------------


@pytest.mark.parametrize("name", REFUSED)
def test_refused_vector(name):
    vector = VECTORS[name]
    key = troc_vector_key(vector)
    guard = ReplayGuard()
    deliveries = int(vector["deliveries"])
    assert deliveries >= 1

    def deliver():
        return verify_request(
            vector["method"], vector["url"], list(vector.headers), vector.body,
            now=int(vector["now"]),
            lookup_key={key.node_id_text: key.node_id}.get,
            replay_guard=guard,
        )  # fmt: skip

    for _ in range(deliveries - 1):
        deliver()
    with pytest.raises(RequestAuthError) as caught:
        deliver()
    assert caught.value.code == vector["expect-error"]
