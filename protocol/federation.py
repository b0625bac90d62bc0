"""The messages of the federation API: msgpack maps, written and read strictly.

Every request and answer body under ``/federation/v1/`` is one msgpack map
whose keys are exactly the ones listed here (docs/protocol-federation.md is
the normative text)::

    announce  request {"ids": [id, ...]}          answer {"want": [id, ...]}
    push      request {"envelopes": [env, ...]}   answer {"accepted": n, "duplicates": n,
                                                          "superseded": n, "blocked": n,
                                                          "refused": [refusal, ...]}
    fetch     request {"ids": [id, ...]}          answer {"envelopes": [env, ...]}
    reconcile request {"message": bin}            answer {"message": bin}
    node      (GET, no body)                      answer {"document": str, "signature": str}

An id is the 32-byte annonce id; an envelope is the signed envelope's bytes
(protocol.envelope). A refusal is ``{"index": n, "code": str, "detail": str,
"field": str | nil}``.

Readers refuse anything else with a ProtocolError: ``DecodeError`` when the
body is not such a map, ``TooLargeError`` when a batch is over its limit (the
count is checked before the items). Id lists are deduplicated, first
occurrence kept. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import msgpack

from protocol import limits
from protocol.errors import DecodeError, TooLargeError

CONTENT_TYPE = "application/msgpack"
PATH_PREFIX = "/federation/v1"
ANNOUNCE_PATH = PATH_PREFIX + "/announce"
PUSH_PATH = PATH_PREFIX + "/push"
FETCH_PATH = PATH_PREFIX + "/fetch"
RECONCILE_PATH = PATH_PREFIX + "/reconcile"
NODE_PATH = PATH_PREFIX + "/node"

ID_BYTES = 32
# Text fields of an answer (codes, details, field names, the node document).
_MAX_TEXT_CHARS = limits.MAX_NODEDOC_CHARS


@dataclass(frozen=True, slots=True)
class ItemRefusal:
    """One envelope of a push that the receiver refused, and why."""

    index: int
    code: str
    detail: str
    field: str | None = None


@dataclass(frozen=True, slots=True)
class PushOutcome:
    """What the receiver did with a pushed batch."""

    accepted: int
    duplicates: int
    superseded: int
    blocked: int
    refused: tuple[ItemRefusal, ...] = ()


# --- Writing -----------------------------------------------------------------


def _pack(value: dict) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


def encode_announce(ids: Iterable[bytes]) -> bytes:
    return _pack({"ids": list(ids)})


def encode_want(ids: Iterable[bytes]) -> bytes:
    return _pack({"want": list(ids)})


def encode_push(envelopes: Iterable[bytes]) -> bytes:
    return _pack({"envelopes": list(envelopes)})


def encode_push_outcome(outcome: PushOutcome) -> bytes:
    return _pack(
        {
            "accepted": outcome.accepted,
            "duplicates": outcome.duplicates,
            "superseded": outcome.superseded,
            "blocked": outcome.blocked,
            "refused": [
                {
                    "index": r.index,
                    "code": r.code,
                    "detail": r.detail[: limits.FEDERATION_MAX_DETAIL_CHARS],
                    "field": r.field,
                }
                for r in outcome.refused
            ],
        }
    )


def encode_fetch(ids: Iterable[bytes]) -> bytes:
    return _pack({"ids": list(ids)})


def encode_envelopes(envelopes: Iterable[bytes]) -> bytes:
    return _pack({"envelopes": list(envelopes)})


def encode_reconcile(message: bytes) -> bytes:
    return _pack({"message": message})


def encode_node_document(served: dict[str, str]) -> bytes:
    return _pack({"document": served["document"], "signature": served["signature"]})


# --- Reading -----------------------------------------------------------------


def _unpack_map(body: bytes, keys: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict:
    """The body as a map with exactly ``keys`` (and any of ``optional``), or DecodeError/TooLargeError."""
    if not isinstance(body, (bytes, bytearray)):
        raise DecodeError("a message is bytes")
    if len(body) > limits.FEDERATION_MAX_BODY_BYTES:
        raise TooLargeError(f"message over {limits.FEDERATION_MAX_BODY_BYTES} bytes")
    try:
        # Every length limit defaults to the body's own size, so a header
        # claiming a huge array or string cannot make msgpack allocate more
        # than the (bounded) body; nesting too deep raises StackError.
        value = msgpack.unpackb(
            bytes(body), raw=False, use_list=True, strict_map_key=True, max_ext_len=0
        )
    except (ValueError, TypeError, OverflowError) as exc:
        raise DecodeError("not a well-formed msgpack message") from exc
    if not isinstance(value, dict):
        raise DecodeError("a message is a msgpack map")
    unknown = sorted(str(k) for k in value if k not in keys and k not in optional)
    if unknown:
        raise DecodeError("unknown key", field=unknown[0][:40])
    missing = [k for k in keys if k not in value]
    if missing:
        raise DecodeError("missing key", field=missing[0])
    return value


def _array(value: object, field: str, limit: int, what: str) -> list:
    if not isinstance(value, list):
        raise DecodeError("must be an array", field=field)
    if len(value) > limit:
        raise TooLargeError(f"at most {limit} {what} in one message", field=field)
    return value


def _ids(value: object, field: str, limit: int) -> list[bytes]:
    items = _array(value, field, limit, "ids")
    for item in items:
        if not isinstance(item, bytes) or len(item) != ID_BYTES:
            raise DecodeError(f"an id is {ID_BYTES} bytes", field=field)
    return list(dict.fromkeys(items))


def _envelopes(value: object, field: str) -> list[bytes]:
    items = _array(value, field, limits.FEDERATION_MAX_ENVELOPES, "envelopes")
    for item in items:
        if not isinstance(item, bytes):
            raise DecodeError("an envelope is a bin value", field=field)
        if len(item) > limits.MAX_ENVELOPE_BYTES:
            raise TooLargeError(f"envelope over {limits.MAX_ENVELOPE_BYTES} bytes", field=field)
    return items


def _count(value: object, field: str) -> int:
    if type(value) is not int or value < 0:
        raise DecodeError("must be a non-negative int", field=field)
    return value


def _text(value: object, field: str, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise DecodeError("must be a str", field=field)
    if len(value) > _MAX_TEXT_CHARS:
        raise TooLargeError(f"at most {_MAX_TEXT_CHARS} characters", field=field)
    return value


def decode_announce(body: bytes) -> list[bytes]:
    return _ids(_unpack_map(body, ("ids",))["ids"], "ids", limits.FEDERATION_MAX_IDS)


def decode_want(body: bytes) -> list[bytes]:
    return _ids(_unpack_map(body, ("want",))["want"], "want", limits.FEDERATION_MAX_IDS)


def decode_push(body: bytes) -> list[bytes]:
    return _envelopes(_unpack_map(body, ("envelopes",))["envelopes"], "envelopes")


def decode_push_outcome(body: bytes) -> PushOutcome:
    keys = ("accepted", "duplicates", "superseded", "blocked", "refused")
    raw = _unpack_map(body, keys)
    refusals = _array(raw["refused"], "refused", limits.FEDERATION_MAX_ENVELOPES, "refusals")
    return PushOutcome(
        *(_count(raw[k], k) for k in keys[:4]),
        refused=tuple(_refusal(item) for item in refusals),
    )


def _refusal(item: object) -> ItemRefusal:
    keys = ("index", "code", "detail", "field")
    if not isinstance(item, dict) or set(item) != set(keys):
        raise DecodeError("a refusal is a map of index, code, detail, field", field="refused")
    return ItemRefusal(
        index=_count(item["index"], "index"),
        code=_text(item["code"], "code"),
        detail=_text(item["detail"], "detail"),
        field=_text(item["field"], "field", optional=True),
    )


def decode_fetch(body: bytes) -> list[bytes]:
    return _ids(_unpack_map(body, ("ids",))["ids"], "ids", limits.FEDERATION_MAX_ENVELOPES)


def decode_envelopes(body: bytes) -> list[bytes]:
    return _envelopes(_unpack_map(body, ("envelopes",))["envelopes"], "envelopes")


def decode_reconcile(body: bytes) -> bytes:
    message = _unpack_map(body, ("message",))["message"]
    if not isinstance(message, bytes):
        raise DecodeError("must be a bin value", field="message")
    if len(message) > limits.RECONCILE_MAX_MESSAGE_BYTES:
        raise TooLargeError(
            f"at most {limits.RECONCILE_MAX_MESSAGE_BYTES} bytes", field="message"
        )
    return message


def decode_node_document(body: bytes) -> dict[str, str]:
    """The served node document (check it with protocol.nodedoc.open_node_document)."""
    raw = _unpack_map(body, ("document", "signature"))
    return {"document": _text(raw["document"], "document"),
            "signature": _text(raw["signature"], "signature")}  # fmt: skip


def chunked(items: Sequence, size: int) -> list[Sequence]:
    """``items`` cut into slices of at most ``size``, in order."""
    return [items[start : start + size] for start in range(0, len(items), size)]
