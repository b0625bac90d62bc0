"""The wire encoding of reconciliation messages: strict decoding, and writing under a frame limit.

``decode_message`` decodes a whole incoming message before any use, checking
every count against the bytes that remain, so hostile input costs at most
linear time in its (bounded) size and can only raise ``ReconcileError``.
``_MessageWriter`` never writes past its frame limit: it always keeps room for
the range that closes a full message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

from protocol.errors import ReconcileError
from protocol.limits import (
    RECONCILE_FINGERPRINT_BYTES,
    RECONCILE_ID_BYTES,
    RECONCILE_INFINITY_TS,
    RECONCILE_MAX_MESSAGE_BYTES,
    RECONCILE_MAX_RANGES,
    RECONCILE_MAX_VARINT_BYTES,
    RECONCILE_VERSION,
)
from protocol.reconcile.items import (
    BOTTOM,
    Bound,
    _key_id,
    _key_ts,
    _varint,
    _varint_size,
    item_key,
)

_MIN_ITEM_BYTES = 1 + RECONCILE_ID_BYTES  # a one-byte timestamp delta and an id
# Worst-case sizes, used to keep room for the range that closes a full message.
_MAX_BOUND_BYTES = RECONCILE_MAX_VARINT_BYTES + 1 + RECONCILE_ID_BYTES
_MAX_SKIP_RANGE_BYTES = _MAX_BOUND_BYTES + 1
_MAX_FINGERPRINT_RANGE_BYTES = _MAX_BOUND_BYTES + 1 + RECONCILE_FINGERPRINT_BYTES
_CLOSING_RESERVE_BYTES = _MAX_SKIP_RANGE_BYTES + _MAX_FINGERPRINT_RANGE_BYTES
_CLOSING_RESERVE_RANGES = 2


class Mode(IntEnum):
    """What a range carries."""

    SKIP = 0  # nothing: the range needs no more work
    FINGERPRINT = 1  # the sender's fingerprint of the range
    ID_LIST = 2  # every item the sender has in the range
    ID_DIFF = 3  # responder only: what it lacks of an ID_LIST, and what it adds


_MODE_BY_BYTE = {mode.value: mode for mode in Mode}


@dataclass(frozen=True, slots=True)
class Range:
    """One decoded range. Items are sort keys (see ``item_key``), ascending.

    For ID_LIST, ``items`` is the sender's items in the range. For ID_DIFF,
    ``items`` is the initiator's items that the responder lacks and
    ``extra_items`` the responder's items that the initiator's list lacked.
    """

    lower: Bound
    upper: Bound
    mode: Mode
    fingerprint: bytes = b""
    items: tuple[bytes, ...] = ()
    extra_items: tuple[bytes, ...] = ()


class _Reader:
    """Reads a message front to back; running out of bytes is a ReconcileError."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def remaining(self) -> int:
        return len(self._data) - self._pos

    def byte(self) -> int:
        if self._pos >= len(self._data):
            raise ReconcileError("message is truncated")
        value = self._data[self._pos]
        self._pos += 1
        return value

    def take(self, size: int) -> bytes:
        if size > self.remaining():
            raise ReconcileError("message is truncated")
        chunk = self._data[self._pos : self._pos + size]
        self._pos += size
        return chunk

    def varint(self) -> int:
        value = 0
        for position in range(RECONCILE_MAX_VARINT_BYTES):
            byte = self.byte()
            value |= (byte & 0x7F) << (7 * position)
            if not byte & 0x80:
                if byte == 0 and position > 0:
                    raise ReconcileError("varint is not in its shortest form")
                if value > RECONCILE_INFINITY_TS:
                    raise ReconcileError("varint exceeds 64 bits")
                return value
        raise ReconcileError("varint is longer than 10 bytes")


def _read_bound(reader: _Reader, previous_ts: int) -> Bound:
    ts = previous_ts + reader.varint()
    if ts > RECONCILE_INFINITY_TS:
        raise ReconcileError("bound timestamp exceeds 2**64 - 1")
    prefix_length = reader.byte()
    if prefix_length > RECONCILE_ID_BYTES:
        raise ReconcileError("bound prefix is longer than an id")
    prefix = reader.take(prefix_length)
    if prefix and prefix[-1] == 0:
        raise ReconcileError("bound prefix ends in a zero byte")
    if ts == RECONCILE_INFINITY_TS and prefix:
        raise ReconcileError("the infinity bound has no prefix")
    return Bound(ts, prefix)


def _read_items(reader: _Reader, lower: Bound, upper: Bound) -> tuple[bytes, ...]:
    count = reader.varint()
    # Check the count against the bytes left before building anything.
    if count > reader.remaining() // _MIN_ITEM_BYTES:
        raise ReconcileError("item count exceeds what the message holds")
    keys: list[bytes] = []
    previous_ts, previous_key = lower.ts, b""
    for _ in range(count):
        ts = previous_ts + reader.varint()
        if ts >= RECONCILE_INFINITY_TS:
            raise ReconcileError("item timestamp is out of range")
        key = item_key(ts, reader.take(RECONCILE_ID_BYTES))
        if key <= previous_key:
            raise ReconcileError("items are not strictly ascending")
        if not lower.key <= key < upper.key:
            raise ReconcileError("item lies outside its range")
        keys.append(key)
        previous_ts, previous_key = ts, key
    return tuple(keys)


def _read_range(reader: _Reader, lower: Bound) -> Range:
    upper = _read_bound(reader, lower.ts)
    if upper.key <= lower.key:
        raise ReconcileError("range bounds are not strictly ascending")
    mode = _MODE_BY_BYTE.get(reader.byte())
    if mode is None:
        raise ReconcileError("unknown range mode")
    if mode is Mode.FINGERPRINT:
        return Range(lower, upper, mode, fingerprint=reader.take(RECONCILE_FINGERPRINT_BYTES))
    if mode is Mode.ID_LIST:
        return Range(lower, upper, mode, items=_read_items(reader, lower, upper))
    if mode is Mode.ID_DIFF:
        lacking = _read_items(reader, lower, upper)
        return Range(
            lower, upper, mode, items=lacking, extra_items=_read_items(reader, lower, upper)
        )
    return Range(lower, upper, mode)


def decode_message(message: bytes) -> tuple[Range, ...]:
    """Decode and check a whole message; anything amiss raises ReconcileError."""
    if not isinstance(message, (bytes, bytearray, memoryview)):
        raise ReconcileError("a reconciliation message is bytes")
    data = bytes(message)
    if len(data) > RECONCILE_MAX_MESSAGE_BYTES:
        raise ReconcileError(f"message is over {RECONCILE_MAX_MESSAGE_BYTES} bytes")
    reader = _Reader(data)
    if not data:
        raise ReconcileError("empty message: the version byte is missing")
    if reader.byte() != RECONCILE_VERSION:
        raise ReconcileError("unsupported reconciliation version")
    ranges: list[Range] = []
    lower = BOTTOM
    while reader.remaining():
        if len(ranges) == RECONCILE_MAX_RANGES:
            raise ReconcileError(f"message has more than {RECONCILE_MAX_RANGES} ranges")
        current = _read_range(reader, lower)
        if current.mode is Mode.SKIP and ranges and ranges[-1].mode is Mode.SKIP:
            raise ReconcileError("adjacent SKIP ranges must be merged")
        ranges.append(current)
        lower = current.upper
    if ranges and ranges[-1].mode is Mode.SKIP:
        raise ReconcileError("a message must not end with a SKIP range")
    return tuple(ranges)


def _encode_items(keys: Sequence[bytes], lower_ts: int) -> bytes:
    parts = [_varint(len(keys))]
    previous_ts = lower_ts
    for key in keys:
        ts = _key_ts(key)
        parts.append(_varint(ts - previous_ts))
        parts.append(_key_id(key))
        previous_ts = ts
    return b"".join(parts)


def _items_that_fit(keys: Sequence[bytes], lower_ts: int, room: int) -> int:
    """How many leading ``keys`` an item list of at most ``room`` bytes holds."""
    used, previous_ts = 0, lower_ts
    for count, key in enumerate(keys):
        ts = _key_ts(key)
        used += _varint_size(ts - previous_ts) + RECONCILE_ID_BYTES
        if used + _varint_size(count + 1) > room:
            return count
        previous_ts = ts
    return len(keys)


class _MessageWriter:
    """Builds one outgoing message under a frame limit.

    SKIP ranges are held back and written only when a later range needs them,
    so adjacent skips merge and a trailing skip is never written. Room for one
    SKIP and one FINGERPRINT is always kept, so ``close`` cannot overflow.
    """

    def __init__(self, frame_bytes: int) -> None:
        self._parts = [bytes([RECONCILE_VERSION])]
        self._size = 1
        self._ranges = 0
        self._frame_bytes = frame_bytes
        self._written_to = BOTTOM  # upper bound of the last range written
        self.cursor = BOTTOM  # everything below is answered (written or skipped)

    @property
    def has_ranges(self) -> bool:
        return self._ranges > 0

    def skip(self, upper: Bound) -> None:
        self.cursor = upper

    def _pending_skip(self) -> bytes:
        if self.cursor.key == self._written_to.key:
            return b""
        return self.cursor.encode(self._written_to.ts) + bytes([Mode.SKIP])

    def room(self) -> int:
        """Bytes left for the next range, after the pending skip and the reserve."""
        if self._ranges + 2 + _CLOSING_RESERVE_RANGES > RECONCILE_MAX_RANGES:
            return 0
        used = self._size + len(self._pending_skip()) + _CLOSING_RESERVE_BYTES
        return self._frame_bytes - used

    def try_add(self, upper: Bound, mode: Mode, payload: bytes = b"") -> bool:
        body = upper.encode(self.cursor.ts) + bytes([mode]) + payload
        if len(body) > self.room():
            return False
        self._write(upper, mode, body)
        return True

    def close(self, upper: Bound, fingerprint: bytes) -> None:
        """End the message: one FINGERPRINT from the cursor up to ``upper``."""
        body = upper.encode(self.cursor.ts) + bytes([Mode.FINGERPRINT]) + fingerprint
        self._write(upper, Mode.FINGERPRINT, body)

    def _write(self, upper: Bound, mode: Mode, body: bytes) -> None:
        skip = self._pending_skip()
        if skip:
            self._parts.append(skip)
            self._ranges += 1
        self._parts.append(body)
        self._size += len(skip) + len(body)
        self._ranges += 1
        self._written_to = self.cursor = upper

    def finish(self) -> bytes:
        return b"".join(self._parts)
