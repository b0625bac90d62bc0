"""Block notices between nodes: one member blocks (or unblocks) a member of another node.

A block has two halves. The blocker's node applies its own half (the
blocker no longer sees the other's annonces, neither can write to the
other); when the blocked member belongs to another node, the blocker's node
tells that node, point to point, in one signed request of the federation
API, so that it applies the other half (it hides the blocker's annonces from
its member and refuses that member's messages to the blocker)::

    block  request {"node": bin, "from": str, "to": str, "blocked": bool, "at": int}
           answer  {"applied": bool}

``node`` is the blocker's home node, which must be the node signing the
request; ``from`` is the blocker's handle there; ``to`` is the handle of the
blocked member, a member of the receiving node; ``blocked`` is true for a
block, false when it is lifted; ``at`` is when the blocker decided. The
answer says whether it changed anything (a retried delivery, or lifting a
block the receiver does not hold, changes nothing). docs/protocol-safety.md
is the normative text.

Readers refuse anything else with a ProtocolError, checking in this order:
the body's size (``TooLargeError``), the map and its exact keys and types
(``DecodeError``), then each value's rules (``ValidationError``). The clock
is checked apart (``check_notice_timely``), with the time as an argument.
Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgpack

from protocol import limits

# The annonce's rule for handles (docs/protocol.md 3.4) and the federation
# API's strict map reader apply to block notices unchanged.
from protocol.annonce import _HANDLE
from protocol.errors import DecodeError, FutureError, TooLargeError, ValidationError
from protocol.federation import PATH_PREFIX, _unpack_map
from protocol.identity import NODE_ID_BYTES

BLOCK_PATH = PATH_PREFIX + "/block"
BLOCK_KEYS = ("node", "from", "to", "blocked", "at")
ANSWER_KEYS = ("applied",)


@dataclass(frozen=True, slots=True)
class BlockNotice:
    """A member of ``blocker_node`` blocks (or no longer blocks) a member of the receiver."""

    blocker_node: bytes
    blocker: str
    blocked: str
    block: bool
    at: int


def encode_block(n: BlockNotice) -> bytes:
    values = (n.blocker_node, n.blocker, n.blocked, n.block, n.at)
    return msgpack.packb(dict(zip(BLOCK_KEYS, values)), use_bin_type=True)


def encode_block_answer(applied: bool) -> bytes:
    return msgpack.packb({"applied": applied}, use_bin_type=True)


def decode_block(body: bytes) -> BlockNotice:
    """The notice of a request body, checked strictly (the clock aside)."""
    if isinstance(body, (bytes, bytearray)) and len(body) > limits.MAX_BLOCK_BODY_BYTES:
        raise TooLargeError(f"block notice over {limits.MAX_BLOCK_BODY_BYTES} bytes", field="body")
    raw = _unpack_map(body, BLOCK_KEYS)
    if not isinstance(raw["node"], bytes) or len(raw["node"]) != NODE_ID_BYTES:
        raise DecodeError(f"must be {NODE_ID_BYTES} bytes", field="node")
    for field in ("from", "to"):
        if not isinstance(raw[field], str):
            raise DecodeError("must be a str", field=field)
    if type(raw["blocked"]) is not bool:
        raise DecodeError("must be a bool", field="blocked")
    if type(raw["at"]) is not int:
        raise DecodeError("must be an int", field="at")
    notice = BlockNotice(raw["node"], raw["from"], raw["to"], raw["blocked"], raw["at"])
    validate_notice(notice)
    return notice


def decode_block_answer(body: bytes) -> bool:
    """Whether the receiver changed anything."""
    applied = _unpack_map(body, ANSWER_KEYS)["applied"]
    if type(applied) is not bool:
        raise DecodeError("must be a bool", field="applied")
    return applied


def validate_notice(n: BlockNotice) -> None:
    """Every rule of a notice that does not depend on the clock or on the receiver."""
    for field, handle in (("from", n.blocker), ("to", n.blocked)):
        if len(handle) > limits.MAX_HANDLE_CHARS or not _HANDLE.fullmatch(handle):
            raise ValidationError("must be lowercase letters, digits, - or _", field=field)
    if not limits.MIN_TIMESTAMP <= n.at <= limits.MAX_TIMESTAMP:
        raise ValidationError("timestamp out of range", field="at")


def check_notice_timely(n: BlockNotice, now: int) -> None:
    """Refuse a notice dated beyond the allowed clock skew."""
    if n.at > now + limits.MAX_CLOCK_SKEW_S:
        raise FutureError(f"more than {limits.MAX_CLOCK_SKEW_S} s ahead of our clock", field="at")
