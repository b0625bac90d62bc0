"""Private messages between members of two nodes, as they travel.

Answering an annonce opens a conversation between its author and the
resident who answers. When they belong to different nodes, each message goes
point to point from the writer's node to the other member's node, in one
signed request of the federation API, and is never gossiped::

    message  request {"conversation": bin, "origin": bin, "uid": bin,
                      "to": str, "from": str, "name": str, "node": bin,
                      "id": bin, "text": str, "sent": int, ["desk": true]}
             answer  {"duplicate": bool}

``conversation`` is the id both nodes give the conversation (chosen by the
node of the resident who answered); ``origin`` and ``uid`` name the annonce;
``to`` is the handle of the recipient, a member of the receiving node;
``from``, ``name`` and ``node`` are the sender's handle, display name and home
node (which must be the node signing the request); ``id`` is the message's
own id, so that a delivery retried is stored once; ``sent`` is when it was
written. ``desk``, present only when true, says that the association's desk of the
sender's node wrote it for the sender, an accompanied member (node.desk).
docs/protocol-federation.md section 8 is the normative text.

Readers refuse anything else with a ProtocolError, checking in this order:
the body's size (``TooLargeError``), the map and its exact keys and types
(``DecodeError``), then each value's rules (``ValidationError``, or
``TooLargeError`` for a text over its limit). The clock is checked apart
(``check_message_timely``), with the time as an argument. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgpack

from protocol import limits

# The annonce's rules for handles, names and characters (docs/protocol.md 3.4)
# and the federation API's strict map reader apply to messages unchanged.
from protocol.annonce import _HANDLE, _check_chars, _check_line
from protocol.errors import DecodeError, FutureError, TooLargeError, ValidationError
from protocol.federation import PATH_PREFIX, _unpack_map
from protocol.identity import NODE_ID_BYTES

MESSAGE_PATH = PATH_PREFIX + "/message"
MESSAGE_KEYS = ("conversation", "origin", "uid", "to", "from", "name", "node", "id", "text", "sent")
OPTIONAL_MESSAGE_KEYS = ("desk",)
ANSWER_KEYS = ("duplicate",)


@dataclass(frozen=True, slots=True)
class PrivateMessage:
    """One message of a conversation, from a member of one node to a member of another."""

    conversation: bytes
    annonce_origin: bytes
    annonce_uid: bytes
    recipient: str
    sender_handle: str
    sender_name: str
    sender_node: bytes
    message_id: bytes
    text: str
    sent_at: int
    desk: bool = False  # written at the association's desk for the sender


def encode_private_message(m: PrivateMessage) -> bytes:
    values = (m.conversation, m.annonce_origin, m.annonce_uid, m.recipient, m.sender_handle,
              m.sender_name, m.sender_node, m.message_id, m.text, m.sent_at)  # fmt: skip
    fields = dict(zip(MESSAGE_KEYS, values))
    if m.desk:
        fields["desk"] = True
    return msgpack.packb(fields, use_bin_type=True)


def encode_message_answer(duplicate: bool) -> bytes:
    return msgpack.packb({"duplicate": duplicate}, use_bin_type=True)


def decode_private_message(body: bytes) -> PrivateMessage:
    """The message of a request body, checked strictly (the clock aside)."""
    if isinstance(body, (bytes, bytearray)) and len(body) > limits.MAX_MESSAGE_BODY_BYTES:
        raise TooLargeError(f"message over {limits.MAX_MESSAGE_BODY_BYTES} bytes", field="body")
    raw = _unpack_map(body, MESSAGE_KEYS, OPTIONAL_MESSAGE_KEYS)
    for field, size in (("conversation", limits.CONVERSATION_KEY_BYTES),
                        ("origin", NODE_ID_BYTES), ("uid", limits.ANNONCE_UID_BYTES),
                        ("node", NODE_ID_BYTES), ("id", limits.MESSAGE_ID_BYTES)):  # fmt: skip
        _bin(raw[field], field, size)
    for field in ("to", "from", "name", "text"):
        if not isinstance(raw[field], str):
            raise DecodeError("must be a str", field=field)
    if type(raw["sent"]) is not int:
        raise DecodeError("must be an int", field="sent")
    if "desk" in raw and raw["desk"] is not True:
        raise DecodeError("must be true, or left out", field="desk")
    message = PrivateMessage(
        raw["conversation"], raw["origin"], raw["uid"], raw["to"], raw["from"], raw["name"],
        raw["node"], raw["id"], raw["text"], raw["sent"], "desk" in raw,
    )  # fmt: skip
    validate_message(message)
    return message


def decode_message_answer(body: bytes) -> bool:
    """Whether the receiver held the message already."""
    duplicate = _unpack_map(body, ANSWER_KEYS)["duplicate"]
    if type(duplicate) is not bool:
        raise DecodeError("must be a bool", field="duplicate")
    return duplicate


def _bin(value: object, field: str, size: int) -> None:
    if not isinstance(value, bytes) or len(value) != size:
        raise DecodeError(f"must be {size} bytes", field=field)


def validate_message(m: PrivateMessage) -> None:
    """Every rule of a message that does not depend on the clock."""
    for field, handle in (("to", m.recipient), ("from", m.sender_handle)):
        if len(handle) > limits.MAX_HANDLE_CHARS or not _HANDLE.fullmatch(handle):
            raise ValidationError("must be lowercase letters, digits, - or _", field=field)
    _check_line(m.sender_name, "name", limits.MAX_DISPLAY_NAME_CHARS, minimum=1)
    _check_chars(m.text, "text", limits.MAX_MESSAGE_CHARS, allow_newlines=True)
    if not m.text.strip():
        raise ValidationError("must not be empty", field="text")
    if not limits.MIN_TIMESTAMP <= m.sent_at <= limits.MAX_TIMESTAMP:
        raise ValidationError("timestamp out of range", field="sent")


def check_message_timely(m: PrivateMessage, now: int) -> None:
    """Refuse a message dated beyond the allowed clock skew."""
    if m.sent_at > now + limits.MAX_CLOCK_SKEW_S:
        raise FutureError(f"more than {limits.MAX_CLOCK_SKEW_S} s ahead of our clock", field="sent")
