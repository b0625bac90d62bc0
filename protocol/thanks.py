"""Thanks without money, as they travel: the exchange, its acknowledgement and the « merci ».

When the author of an annonce marks it fulfilled, they may say who helped, among
the people they talked with about it. That makes an *exchange* between the two
members of one conversation (protocol.conversations). Each may then send the
other one « merci », with an optional short text. Both travel point to point,
never gossiped, each as one signed request of the federation API
(docs/protocol-thanks.md is the normative text)::

    exchange  request  [signer, statement, signature]     the author's node states it
              answer   {"duplicate": bool, "ack": bin}     the other node's signature
    merci     request  [signer, statement, signature]     the thanking member's node
              answer   {"duplicate": bool}

A request body is a *signed statement*, shaped like an annonce's envelope
(protocol.envelope): a msgpack array of three byte strings, the signing node,
the statement (a msgpack map) and its Ed25519 signature over a domain and the
statement's exact bytes. The receiver verifies the bytes it got, then decodes;
it keeps them, and the acknowledgement (the receiving node's signature over
ACK_DOMAIN and the same bytes) goes back to the author's node: each side
holds the other node's signature over the exchange.

Readers refuse anything else with a ProtocolError, in this order: the size
(``TooLargeError``), the array, then the map, its keys and types
(``DecodeError``), with the signature verified over the statement's bytes before
they are decoded (``SignatureError``), then each value's rules
(``ValidationError``, or ``TooLargeError`` for a text over its limit). The
clock is checked apart (``check_timely``). Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgpack

from protocol import limits
from protocol.annonce import _HANDLE, Kind, _check_chars
from protocol.errors import (
    DecodeError,
    FutureError,
    SignatureError,
    TooLargeError,
    ValidationError,
)
from protocol.federation import PATH_PREFIX, _unpack_map
from protocol.identity import NODE_ID_BYTES, SIGNATURE_BYTES, NodeKey, verify_signature

EXCHANGE_PATH = PATH_PREFIX + "/exchange"
MERCI_PATH = PATH_PREFIX + "/merci"
EXCHANGE_DOMAIN = b"troc-exchange-v1\x00"
ACK_DOMAIN = b"troc-exchange-ack-v1\x00"
MERCI_DOMAIN = b"troc-merci-v1\x00"

EXCHANGE_KEYS = ("conversation", "origin", "uid", "kind", "author", "other", "node", "at")
MERCI_KEYS = ("conversation", "origin", "uid", "from", "text", "sent")
EXCHANGE_ANSWER_KEYS = ("duplicate", "ack")
MERCI_ANSWER_KEYS = ("duplicate",)

# --- Limits (docs/protocol-thanks.md section 6) -------------------------------------
MAX_THANKS_CHARS = 280  # the longest text of a merci
MAX_THANKS_BODY_BYTES = 2048  # the largest request body of exchange or merci


@dataclass(frozen=True, slots=True)
class Exchange:
    """Who helped: stated by the author's node, about one conversation of its annonce."""

    conversation: bytes
    origin: bytes  # the annonce's node, the author's: it signs the statement
    uid: bytes
    kind: Kind  # request: the other member helped the author; offer: the author helped them
    author: str
    other: str
    other_node: bytes
    at: int


@dataclass(frozen=True, slots=True)
class Merci:
    """One side's thanks for an exchange; its node (the signer) is the writer's."""

    conversation: bytes
    origin: bytes
    uid: bytes
    sender: str
    text: str
    sent_at: int


@dataclass(frozen=True, slots=True)
class Signed:
    """A verified statement: the signing node, the statement's exact bytes, the record."""

    signer: bytes
    statement: bytes
    signature: bytes
    record: Exchange | Merci

    @property
    def body(self) -> bytes:
        return pack_signed(self.signer, self.statement, self.signature)


# --- Writing ------------------------------------------------------------------------


def pack_signed(signer: bytes, statement: bytes, signature: bytes) -> bytes:
    return msgpack.packb([signer, statement, signature], use_bin_type=True)


def encode_exchange(x: Exchange) -> bytes:
    values = (x.conversation, x.origin, x.uid, x.kind.value, x.author, x.other, x.other_node,
              x.at)  # fmt: skip
    return msgpack.packb(dict(zip(EXCHANGE_KEYS, values)), use_bin_type=True)


def encode_merci(m: Merci) -> bytes:
    values = (m.conversation, m.origin, m.uid, m.sender, m.text, m.sent_at)
    return msgpack.packb(dict(zip(MERCI_KEYS, values)), use_bin_type=True)


def sign_exchange(key: NodeKey, x: Exchange) -> Signed:
    """The author's node states the exchange (only about its own annonce)."""
    if x.origin != key.node_id:
        raise SignatureError("a node states exchanges of its own annonces only", field="origin")
    validate_exchange(x)
    statement = encode_exchange(x)
    return Signed(key.node_id, statement, key.sign(EXCHANGE_DOMAIN + statement), x)


def sign_merci(key: NodeKey, m: Merci) -> Signed:
    validate_merci(m)
    statement = encode_merci(m)
    return Signed(key.node_id, statement, key.sign(MERCI_DOMAIN + statement), m)


def acknowledge(key: NodeKey, exchange_statement: bytes) -> bytes:
    """The other node's signature over the exchange it accepted."""
    return key.sign(ACK_DOMAIN + exchange_statement)


def verify_ack(node_id: bytes, ack: bytes, exchange_statement: bytes) -> None:
    """SignatureError unless ``ack`` is ``node_id``'s acknowledgement of the statement."""
    verify_signature(node_id, ack, ACK_DOMAIN + exchange_statement)


def encode_exchange_answer(duplicate: bool, ack: bytes) -> bytes:
    return msgpack.packb({"duplicate": duplicate, "ack": ack}, use_bin_type=True)


def encode_merci_answer(duplicate: bool) -> bytes:
    return msgpack.packb({"duplicate": duplicate}, use_bin_type=True)


# --- Reading ------------------------------------------------------------------------


def split_signed(body: object) -> tuple[bytes, bytes, bytes]:
    """The (signer, statement, signature) of a request body, checking its shape only."""
    if not isinstance(body, (bytes, bytearray)):
        raise DecodeError("a signed statement is bytes")
    if len(body) > MAX_THANKS_BODY_BYTES:
        raise TooLargeError(f"body over {MAX_THANKS_BODY_BYTES} bytes", field="body")
    try:
        parts = msgpack.unpackb(bytes(body), raw=False, use_list=True, max_str_len=0,
                                max_array_len=3, max_map_len=0, max_ext_len=0)  # fmt: skip
    except (ValueError, TypeError, OverflowError) as exc:
        raise DecodeError("not well-formed msgpack", field="body") from exc
    if not (isinstance(parts, list) and len(parts) == 3
            and all(isinstance(p, bytes) for p in parts)):  # fmt: skip
        raise DecodeError("a signed statement is an array of three byte strings", field="body")
    signer, statement, signature = parts
    if len(signer) != NODE_ID_BYTES:
        raise DecodeError(f"must be {NODE_ID_BYTES} bytes", field="signer")
    if len(signature) != SIGNATURE_BYTES:
        raise DecodeError(f"must be {SIGNATURE_BYTES} bytes", field="signature")
    return signer, statement, signature


def open_exchange(body: bytes) -> Signed:
    """Verify, then decode, an exchange; every rule but the clock is checked."""
    signer, statement, signature = split_signed(body)
    verify_signature(signer, signature, EXCHANGE_DOMAIN + statement)
    raw = _unpack_map(statement, EXCHANGE_KEYS)
    _bins(raw, ("conversation", limits.CONVERSATION_KEY_BYTES), ("origin", NODE_ID_BYTES),
          ("uid", limits.ANNONCE_UID_BYTES), ("node", NODE_ID_BYTES))  # fmt: skip
    _strs(raw, "kind", "author", "other")
    _int(raw, "at")
    if raw["kind"] not in {k.value for k in Kind}:
        raise ValidationError("must be offer or request", field="kind")
    x = Exchange(raw["conversation"], raw["origin"], raw["uid"], Kind(raw["kind"]),
                 raw["author"], raw["other"], raw["node"], raw["at"])  # fmt: skip
    if x.origin != signer:
        raise SignatureError("the annonce's node is not the node that signed", field="origin")
    validate_exchange(x)
    return Signed(signer, statement, signature, x)


def open_merci(body: bytes) -> Signed:
    """Verify, then decode, a merci; every rule but the clock is checked."""
    signer, statement, signature = split_signed(body)
    verify_signature(signer, signature, MERCI_DOMAIN + statement)
    raw = _unpack_map(statement, MERCI_KEYS)
    _bins(raw, ("conversation", limits.CONVERSATION_KEY_BYTES), ("origin", NODE_ID_BYTES),
          ("uid", limits.ANNONCE_UID_BYTES))  # fmt: skip
    _strs(raw, "from", "text")
    _int(raw, "sent")
    m = Merci(raw["conversation"], raw["origin"], raw["uid"], raw["from"], raw["text"],
              raw["sent"])  # fmt: skip
    validate_merci(m)
    return Signed(signer, statement, signature, m)


def decode_exchange_answer(body: bytes) -> tuple[bool, bytes]:
    """Whether the receiver held the exchange already, and its acknowledgement."""
    raw = _unpack_map(body, EXCHANGE_ANSWER_KEYS)
    if type(raw["duplicate"]) is not bool:
        raise DecodeError("must be a bool", field="duplicate")
    _bins(raw, ("ack", SIGNATURE_BYTES))
    return raw["duplicate"], raw["ack"]


def decode_merci_answer(body: bytes) -> bool:
    duplicate = _unpack_map(body, MERCI_ANSWER_KEYS)["duplicate"]
    if type(duplicate) is not bool:
        raise DecodeError("must be a bool", field="duplicate")
    return duplicate


def _bins(raw: dict, *fields: tuple[str, int]) -> None:
    for field, size in fields:
        if not isinstance(raw[field], bytes) or len(raw[field]) != size:
            raise DecodeError(f"must be {size} bytes", field=field)


def _strs(raw: dict, *fields: str) -> None:
    for field in fields:
        if not isinstance(raw[field], str):
            raise DecodeError("must be a str", field=field)


def _int(raw: dict, field: str) -> None:
    if type(raw[field]) is not int:
        raise DecodeError("must be an int", field=field)


# --- Rules --------------------------------------------------------------------------


def _check_handle(value: str, field: str) -> None:
    if len(value) > limits.MAX_HANDLE_CHARS or not _HANDLE.fullmatch(value):
        raise ValidationError("must be lowercase letters, digits, - or _", field=field)


def _check_time(value: int, field: str) -> None:
    if not limits.MIN_TIMESTAMP <= value <= limits.MAX_TIMESTAMP:
        raise ValidationError("timestamp out of range", field=field)


def validate_exchange(x: Exchange) -> None:
    """Every rule of an exchange that does not depend on the clock."""
    _check_handle(x.author, "author")
    _check_handle(x.other, "other")
    if (x.origin, x.author) == (x.other_node, x.other):
        raise ValidationError("one does not help oneself", field="other")
    _check_time(x.at, "at")


def validate_merci(m: Merci) -> None:
    """Every rule of a merci that does not depend on the clock; its text may be empty."""
    _check_handle(m.sender, "from")
    _check_chars(m.text, "text", MAX_THANKS_CHARS, allow_newlines=True)
    _check_time(m.sent_at, "sent")


def check_timely(when: int, field: str, now: int) -> None:
    """Refuse a statement dated beyond the allowed clock skew."""
    if when > now + limits.MAX_CLOCK_SKEW_S:
        raise FutureError(f"more than {limits.MAX_CLOCK_SKEW_S} s ahead of our clock", field=field)
