"""The node document served at ``/.well-known/troc``.

It tells who a node is: its id (public key), fingerprint, name, public URL,
area and protocol version. The node signs the exact JSON text of the document;
the response carries that text as a string, so a reader verifies the bytes it
received and only then parses them::

    {"document": "<JSON text>", "signature": "<base64url Ed25519 signature>"}

The signature covers ``NODEDOC_DOMAIN + document.encode("utf-8")``.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass

from protocol import limits
from protocol.annonce import _check_chars, _check_line
from protocol.errors import DecodeError, SignatureError, TooLargeError, ValidationError
from protocol.identity import (
    NodeKey,
    b64url_decode,
    b64url_encode,
    fingerprint,
    parse_node_id,
    verify_signature,
)

NODEDOC_DOMAIN = b"troc-node-v1\x00"
OPTIONAL_MEMBERS = ("recovery",)


@dataclass(frozen=True, slots=True)
class NodeDocument:
    id: str
    fingerprint: str
    name: str
    url: str
    area: str
    protocol: int
    software: str
    issued: int
    # The public key of the node's recovery key (docs/protocol.md section 12),
    # in node id text form; absent from the document when the node has none.
    recovery: str | None = None

    @property
    def node_id(self) -> bytes:
        return parse_node_id(self.id)


def sign_node_document(key: NodeKey, doc: NodeDocument) -> dict[str, str]:
    """The JSON object to serve: the document's text and its signature."""
    if doc.id != key.node_id_text:
        raise SignatureError("a node signs only its own document")
    text = json.dumps(document_fields(doc), ensure_ascii=False, sort_keys=True)
    signature = key.sign(NODEDOC_DOMAIN + text.encode("utf-8"))
    return {"document": text, "signature": b64url_encode(signature)}


def document_fields(doc: NodeDocument) -> dict[str, object]:
    """The document's members as it is written: an optional member left out when unset."""
    return {name: value for name, value in asdict(doc).items()
            if not (name in OPTIONAL_MEMBERS and value is None)}  # fmt: skip


def open_node_document(served: object) -> NodeDocument:
    """Verify a served node document, then parse it; ProtocolError on any fault."""
    if not isinstance(served, dict):
        raise DecodeError("a node document is a JSON object")
    text, signature = served.get("document"), served.get("signature")
    if not isinstance(text, str) or not isinstance(signature, str):
        raise DecodeError("document and signature must be strings")
    if len(text) > limits.MAX_NODEDOC_CHARS:
        raise TooLargeError("node document too large")
    try:
        signed = NODEDOC_DOMAIN + text.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate from a JSON escape
        raise DecodeError("document is not valid Unicode text") from exc
    try:
        fields = json.loads(text, object_pairs_hook=_unique_names)
    except (ValueError, RecursionError) as exc:  # deep nesting: RecursionError
        raise DecodeError("document is not JSON") from exc
    if not isinstance(fields, dict) or not isinstance(fields.get("id"), str):
        raise DecodeError("document has no id")
    node_id = parse_node_id(fields["id"])
    verify_signature(node_id, b64url_decode(signature), signed)
    return _node_document(fields, node_id)


def _unique_names(pairs: list[tuple[str, object]]) -> dict:
    # Readers that keep the first or the last of two equal names would disagree
    # on what was signed, so a duplicate name makes the document malformed.
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names):
        raise ValueError("duplicate name in a JSON object")
    return dict(pairs)


def _node_document(fields: dict, node_id: bytes) -> NodeDocument:
    expected = {f: t for f, t in NodeDocument.__annotations__.items() if f not in OPTIONAL_MEMBERS}
    if not set(expected) <= set(fields) <= set(expected) | set(OPTIONAL_MEMBERS):
        raise DecodeError("document fields differ from the specification")
    for name, kind in expected.items():
        value = fields[name]
        if type(value).__name__ != kind:
            raise DecodeError(f"must be of type {kind}", field=name)
    if "recovery" in fields:
        if not isinstance(fields["recovery"], str):
            raise DecodeError("must be of type str", field="recovery")
        try:
            parse_node_id(fields["recovery"])
        except DecodeError:
            raise DecodeError("must be a key in node id form", field="recovery") from None
    doc = NodeDocument(**fields)
    _check_text(doc)
    if doc.fingerprint != fingerprint(node_id):
        raise ValidationError("fingerprint does not match the id", field="fingerprint")
    if doc.protocol != limits.PROTOCOL_VERSION:
        raise ValidationError("unsupported protocol version", field="protocol")
    if not doc.url.startswith(("http://", "https://")) or not _URL_CHARS.fullmatch(doc.url):
        raise ValidationError("must be an http(s) URL of printable ASCII", field="url")
    return doc


# A URL is ASCII (RFC 3986): no space, no control, nothing a terminal would act on.
_URL_CHARS = re.compile(r"[\x21-\x7e]+")


def _check_text(doc: NodeDocument) -> None:
    """What people read (an operator comparing fingerprints): the characters of a line.

    The rule of annonce lines (docs/protocol.md section 3.4): no control, format
    or bidi character could redraw what a terminal or a page shows around it.
    """
    _check_line(doc.name, "name", limits.MAX_NODE_NAME_CHARS, minimum=1)
    for name in ("area", "software"):
        _check_chars(getattr(doc, name), name, limits.MAX_NODEDOC_CHARS, allow_newlines=False)
