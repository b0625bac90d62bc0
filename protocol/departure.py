"""Departure notices: a member left their node, and a node that holds a conversation
with them is asked to anonymise its copy.

When a member deletes their account, their node sends, for each conversation
they had with a member of another node, one notice point to point to that
node, in one signed request of the federation API::

    departure  request {"conversation": bin, "node": bin, "handle": str, "left": int}
               answer  {"duplicate": bool}

``conversation`` is the id both nodes give the conversation; ``node`` is the
departed member's home node, which must be the node signing the request;
``handle`` is the departed member's handle there (a party of the
conversation); ``left`` is when the account was deleted. The answer says
whether the receiver had anonymised the conversation already (a retried
delivery). docs/protocol-rights.md is the normative text.

Readers refuse anything else with a ProtocolError, checking in this order:
the body's size (``TooLargeError``), the map and its exact keys and types
(``DecodeError``), then each value's rules (``ValidationError``). The clock
is checked apart (``check_departure_timely``), with the time as an argument.
Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgpack

from protocol import limits

# The annonce's rule for handles (docs/protocol.md 3.4) and the federation
# API's strict map reader apply to departure notices unchanged.
from protocol.annonce import _HANDLE
from protocol.errors import DecodeError, FutureError, TooLargeError, ValidationError
from protocol.federation import PATH_PREFIX, _unpack_map
from protocol.identity import NODE_ID_BYTES

DEPARTURE_PATH = PATH_PREFIX + "/departure"
DEPARTURE_KEYS = ("conversation", "node", "handle", "left")
ANSWER_KEYS = ("duplicate",)
# The largest request body of ``departure``: the longest handle fits with room to spare.
MAX_DEPARTURE_BODY_BYTES = 256


@dataclass(frozen=True, slots=True)
class Departure:
    """The member ``handle`` of ``node`` left; ``conversation`` is one of theirs."""

    conversation: bytes
    node: bytes
    handle: str
    left: int


def encode_departure(d: Departure) -> bytes:
    values = (d.conversation, d.node, d.handle, d.left)
    return msgpack.packb(dict(zip(DEPARTURE_KEYS, values)), use_bin_type=True)


def encode_departure_answer(duplicate: bool) -> bytes:
    return msgpack.packb({"duplicate": duplicate}, use_bin_type=True)


def decode_departure(body: bytes) -> Departure:
    """The notice of a request body, checked strictly (the clock aside)."""
    if isinstance(body, (bytes, bytearray)) and len(body) > MAX_DEPARTURE_BODY_BYTES:
        raise TooLargeError(f"departure notice over {MAX_DEPARTURE_BODY_BYTES} bytes",
                            field="body")  # fmt: skip
    raw = _unpack_map(body, DEPARTURE_KEYS)
    for field, size in (("conversation", limits.CONVERSATION_KEY_BYTES), ("node", NODE_ID_BYTES)):
        if not isinstance(raw[field], bytes) or len(raw[field]) != size:
            raise DecodeError(f"must be {size} bytes", field=field)
    if not isinstance(raw["handle"], str):
        raise DecodeError("must be a str", field="handle")
    if type(raw["left"]) is not int:
        raise DecodeError("must be an int", field="left")
    departure = Departure(raw["conversation"], raw["node"], raw["handle"], raw["left"])
    validate_departure(departure)
    return departure


def decode_departure_answer(body: bytes) -> bool:
    """Whether the receiver had anonymised the conversation already."""
    duplicate = _unpack_map(body, ANSWER_KEYS)["duplicate"]
    if type(duplicate) is not bool:
        raise DecodeError("must be a bool", field="duplicate")
    return duplicate


def validate_departure(d: Departure) -> None:
    """Every rule of a notice that does not depend on the clock."""
    if len(d.handle) > limits.MAX_HANDLE_CHARS or not _HANDLE.fullmatch(d.handle):
        raise ValidationError("must be lowercase letters, digits, - or _", field="handle")
    if not limits.MIN_TIMESTAMP <= d.left <= limits.MAX_TIMESTAMP:
        raise ValidationError("timestamp out of range", field="left")


def check_departure_timely(d: Departure, now: int) -> None:
    """Refuse a notice dated beyond the allowed clock skew."""
    if d.left > now + limits.MAX_CLOCK_SKEW_S:
        raise FutureError(f"more than {limits.MAX_CLOCK_SKEW_S} s ahead of our clock",
                          field="left")  # fmt: skip
