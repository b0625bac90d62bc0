"""The frames of a federation stream: requests and answers of the API on one connection.

A stream (docs/protocol-federation.md section 13) is a WebSocket opened by a
signed ``GET /federation/v1/stream``. Each binary message on it is one
frame, a msgpack array of three values::

    request  [seq, op, body]       seq: int, op: "offer" | "push", body: bin
    answer   [seq, status, body]   status: the HTTP status the request API would answer,
                                   body: the answer (msgpack on 200, the problem
                                   document's JSON otherwise)

A push's bodies are exactly those of the request API (protocol.federation),
read by the same readers. An offer is an announce made compact: its body is
a msgpack array of distinct ids, and its answer the array of the positions
(in the offer) of the ids wanted, not the ids again. The receiver answers
requests in the order it read them; ``seq`` lets the sender match each
answer to its request.

Readers refuse anything else with ``DecodeError``, or ``TooLargeError`` past
STREAM_MAX_FRAME_BYTES. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import msgpack

from protocol import limits
from protocol.errors import DecodeError, TooLargeError
from protocol.federation import ANNOUNCE_PATH, PATH_PREFIX, PUSH_PATH, _array, _ids

STREAM_PATH = PATH_PREFIX + "/stream"
# What a stream carries: the op of a frame, and the endpoint of the request API it stands for.
STREAM_OPS = {"offer": ANNOUNCE_PATH, "push": PUSH_PATH}
MAX_SEQ = 2**32 - 1  # a sender counts from 0 and wraps around past this
MIN_STATUS, MAX_STATUS = 100, 599

# Close codes of RFC 6455 a receiver ends a stream with.
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_UNSUPPORTED = 1003  # a text message
CLOSE_MALFORMED = 1007  # a binary message that is not a frame
CLOSE_POLICY = 1008  # the sender is no longer accepted
CLOSE_TOO_LARGE = 1009  # a message over STREAM_MAX_FRAME_BYTES


@dataclass(frozen=True, slots=True)
class StreamRequest:
    seq: int
    op: str
    body: bytes


@dataclass(frozen=True, slots=True)
class StreamAnswer:
    seq: int
    status: int
    body: bytes


def encode_offer(ids: Sequence[bytes]) -> bytes:
    return msgpack.packb(list(ids), use_bin_type=True)


def encode_offer_answer(wanted: Sequence[int]) -> bytes:
    return msgpack.packb(list(wanted), use_bin_type=True)


def _unpack_array(body: bytes, field: str) -> list:
    try:
        value = msgpack.unpackb(bytes(body), raw=False, use_list=True, strict_map_key=True,
                                max_ext_len=0)  # fmt: skip
    except (ValueError, TypeError, OverflowError) as exc:
        raise DecodeError("not a well-formed msgpack value", field=field) from exc
    return _array(value, field, limits.FEDERATION_MAX_IDS, "ids")


def decode_offer(body: bytes) -> list[bytes]:
    """The ids of an offer: distinct 32-byte bin values, at most FEDERATION_MAX_IDS."""
    offered = _unpack_array(body, "ids")
    ids = _ids(offered, "ids", limits.FEDERATION_MAX_IDS)  # the announce's checks
    if len(ids) != len(offered):
        raise DecodeError("an offer names each id once", field="ids")
    return ids


def decode_offer_answer(body: bytes, offered: int) -> list[int]:
    """The positions wanted, among ``offered`` ids: increasing, each once, each below it."""
    wanted = _unpack_array(body, "want")
    previous = -1
    for index in wanted:
        if type(index) is not int or not previous < index < offered:
            raise DecodeError("positions in the offer, increasing", field="want")
        previous = index
    return wanted


def encode_request(seq: int, op: str, body: bytes) -> bytes:
    if op not in STREAM_OPS:
        raise ValueError(f"no stream op {op!r}")
    return msgpack.packb([seq, op, body], use_bin_type=True)


def encode_answer(seq: int, status: int, body: bytes) -> bytes:
    return msgpack.packb([seq, status, body], use_bin_type=True)


def _unpack_frame(frame: bytes) -> list:
    if not isinstance(frame, (bytes, bytearray)):
        raise DecodeError("a frame is a binary message")
    if len(frame) > limits.STREAM_MAX_FRAME_BYTES:
        raise TooLargeError(f"frame over {limits.STREAM_MAX_FRAME_BYTES} bytes")
    try:
        value = msgpack.unpackb(bytes(frame), raw=False, use_list=True, strict_map_key=True,
                                max_ext_len=0)  # fmt: skip
    except (ValueError, TypeError, OverflowError) as exc:
        raise DecodeError("not a well-formed msgpack frame") from exc
    if not isinstance(value, list) or len(value) != 3:
        raise DecodeError("a frame is an array of three values")
    seq, _, body = value
    if type(seq) is not int or not 0 <= seq <= MAX_SEQ:
        raise DecodeError(f"seq is an int from 0 to {MAX_SEQ}", field="seq")
    if not isinstance(body, bytes):
        raise DecodeError("body is a bin value", field="body")
    if len(body) > limits.FEDERATION_MAX_BODY_BYTES:
        raise TooLargeError(f"body over {limits.FEDERATION_MAX_BODY_BYTES} bytes", field="body")
    return value


def decode_request(frame: bytes) -> StreamRequest:
    """A request frame; its op is checked by the receiver (an unknown one is answered 404)."""
    seq, op, body = _unpack_frame(frame)
    if not isinstance(op, str) or len(op) > 32:
        raise DecodeError("op is a short str", field="op")
    return StreamRequest(seq, op, body)


def decode_answer(frame: bytes) -> StreamAnswer:
    seq, status, body = _unpack_frame(frame)
    if type(status) is not int or not MIN_STATUS <= status <= MAX_STATUS:
        raise DecodeError("status is an HTTP status", field="status")
    return StreamAnswer(seq, status, body)
