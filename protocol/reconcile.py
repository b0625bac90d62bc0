"""Range-based set reconciliation: find what two nodes hold that the other lacks.

Each node holds a set of items ``(timestamp, id)``: the id is the 32-byte
SHA-256 of a signed annonce, the timestamp a Unix time. Two nodes learn their
symmetric difference with bytes and round trips that grow with the number of
differences, not with the size of the sets. The method is range-based set
reconciliation (Aljoscha Meyer), the one negentropy uses; the encoding here is
our own, specified in docs/protocol-reconcile.md.

Design
------
*Ordering.* Items are ordered by timestamp, then id. Each item is stored as its
40-byte *sort key* (8-byte big-endian timestamp followed by the id), so byte
order is item order and ``bisect`` finds any bound in O(log n).

*Ranges and bounds.* A message is a sequence of ranges that tile the universe
in order; only upper bounds travel (a range's lower bound is the previous
range's upper bound). A bound is a timestamp and the shortest id prefix that
separates two neighbouring items, so most bounds cost a few bytes.

*Fingerprints.* The fingerprint of a range is SHA-256 over the sum of its ids
(read as 256-bit little-endian integers, modulo 2**256) and its item count,
truncated to 16 bytes. Sums can be subtracted, so ``SortedItems`` keeps prefix
sums and any range's fingerprint costs two bisects and one hash.

*Rounds.* The initiator opens with fingerprints of a few buckets of its whole
set (or the list of its items, if it holds few). Each side answers every range
of the other's message: equal fingerprints are answered SKIP; differing ones
are split into buckets again, or answered with the item list when the range is
small. An item list lets the receiver settle the range for good: the initiator
computes both differences itself; the responder answers ID_DIFF (what it lacks
of the list, and what it has that the list lacks), which the initiator settles.
The initiator is done when everything it would send is SKIP.

*Statelessness.* The responder is an HTTP server: ``respond`` is a pure function
of its item set and the message. The initiator keeps only what it already
reported, so a range that comes back after a frame overflow is not reported
twice.

*Frame limits.* Neither side ever writes a message longer than its frame limit.
When the next range would not fit, the writer stops and closes the message with
one FINGERPRINT range over everything from there up to the last range still in
play; the peer splits it again next round. The same trick lets an item list be
cut between two items. Nothing has to be remembered for later.

*Strictness.* Every incoming message is decoded in full by ``decode_message``
before any use, with every count checked against the bytes that remain, so
hostile input costs at most linear time in its (bounded) size and can only
raise ``ReconcileError``.

The module is pure: no I/O, no clock, no asyncio.
"""

from __future__ import annotations

import hashlib
import operator
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from itertools import accumulate, islice
from typing import NamedTuple

from protocol.errors import ReconcileError
from protocol.limits import (
    RECONCILE_DEFAULT_BUCKETS,
    RECONCILE_DEFAULT_FRAME_BYTES,
    RECONCILE_DEFAULT_ID_LIST_THRESHOLD,
    RECONCILE_FINGERPRINT_BYTES,
    RECONCILE_ID_BYTES,
    RECONCILE_INFINITY_TS,
    RECONCILE_MAX_BUCKETS,
    RECONCILE_MAX_ID_LIST_THRESHOLD,
    RECONCILE_MAX_MESSAGE_BYTES,
    RECONCILE_MAX_RANGES,
    RECONCILE_MAX_ROUNDS,
    RECONCILE_MAX_VARINT_BYTES,
    RECONCILE_MIN_BUCKETS,
    RECONCILE_MIN_FRAME_BYTES,
    RECONCILE_VERSION,
)

__all__ = [
    "BOTTOM",
    "INFINITY",
    "Bound",
    "Mode",
    "Range",
    "ReconcileStep",
    "Reconciler",
    "SortedItems",
    "decode_message",
    "fingerprint_of",
    "item_key",
    "respond",
]

_TS_BYTES = 8
_SUM_MODULUS = 1 << 256
_MIN_ITEM_BYTES = 1 + RECONCILE_ID_BYTES  # a one-byte timestamp delta and an id
# Worst-case sizes, used to keep room for the range that closes a full message.
_MAX_BOUND_BYTES = RECONCILE_MAX_VARINT_BYTES + 1 + RECONCILE_ID_BYTES
_MAX_SKIP_RANGE_BYTES = _MAX_BOUND_BYTES + 1
_MAX_FINGERPRINT_RANGE_BYTES = _MAX_BOUND_BYTES + 1 + RECONCILE_FINGERPRINT_BYTES
_CLOSING_RESERVE_BYTES = _MAX_SKIP_RANGE_BYTES + _MAX_FINGERPRINT_RANGE_BYTES
_CLOSING_RESERVE_RANGES = 2


# --- Varints ----------------------------------------------------------------


def _varint(value: int) -> bytes:
    """Unsigned LEB128: seven bits a byte, least significant first."""
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _varint_size(value: int) -> int:
    return max(1, (value.bit_length() + 6) // 7)


# --- Items, keys and bounds -------------------------------------------------


def item_key(ts: int, item_id: bytes) -> bytes:
    """The 40-byte sort key of an item: byte order is (timestamp, id) order."""
    return ts.to_bytes(_TS_BYTES, "big") + item_id


def _key_ts(key: bytes) -> int:
    return int.from_bytes(key[:_TS_BYTES], "big")


def _key_id(key: bytes) -> bytes:
    return key[_TS_BYTES:]


@dataclass(frozen=True, slots=True)
class Bound:
    """A point between items: ``ts`` and an id prefix, zero-padded to 32 bytes.

    A range includes its lower bound and excludes its upper bound.
    """

    ts: int
    prefix: bytes = b""
    key: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        padding = bytes(RECONCILE_ID_BYTES - len(self.prefix))
        object.__setattr__(self, "key", item_key(self.ts, self.prefix + padding))

    def encode(self, previous_ts: int) -> bytes:
        return _varint(self.ts - previous_ts) + bytes([len(self.prefix)]) + self.prefix


BOTTOM = Bound(0)
INFINITY = Bound(RECONCILE_INFINITY_TS)


def _bound_between(before: bytes, after: bytes) -> Bound:
    """The shortest bound above sort key ``before`` and at or below ``after``."""
    ts = _key_ts(after)
    if _key_ts(before) != ts:
        return Bound(ts)
    before_id, after_id = _key_id(before), _key_id(after)
    shared = 0
    while before_id[shared] == after_id[shared]:
        shared += 1
    # after_id[shared] > before_id[shared] >= 0: the prefix never ends in a zero.
    return Bound(ts, after_id[: shared + 1])


# --- The item set -----------------------------------------------------------


def _fingerprint(id_sum: int, count: int) -> bytes:
    digest = hashlib.sha256((id_sum % _SUM_MODULUS).to_bytes(32, "little") + _varint(count))
    return digest.digest()[:RECONCILE_FINGERPRINT_BYTES]


def _validated_key(item: tuple[int, bytes]) -> bytes:
    ts, item_id = item
    if type(ts) is not int or not 0 <= ts < RECONCILE_INFINITY_TS:
        raise ValueError(f"item timestamp must be an int in [0, 2**64 - 1): {ts!r}")
    if not isinstance(item_id, bytes) or len(item_id) != RECONCILE_ID_BYTES:
        raise ValueError(f"item id must be {RECONCILE_ID_BYTES} bytes: {item_id!r}")
    return ts.to_bytes(_TS_BYTES, "big") + item_id


def _sorted_unique(keys: list[bytes]) -> list[bytes]:
    keys.sort()  # near-linear when the caller already gives them in order
    if any(map(operator.eq, keys, islice(keys, 1, None))):
        keys = sorted(set(keys))
    return keys


class SortedItems:
    """An immutable set of ``(timestamp, id)`` items, sorted, with prefix sums.

    Built once from any iterable of pairs; duplicates are dropped and a bad
    item raises ValueError (or TypeError). ``len``, membership, index lookups
    and range fingerprints are O(log n); building is O(n log n) and takes about
    a second and a half for a million items.
    """

    __slots__ = ("_keys", "_sums")

    def __init__(self, items: Iterable[tuple[int, bytes]] = ()) -> None:
        keys = _sorted_unique([_validated_key(item) for item in items])
        from_bytes = int.from_bytes
        ids_as_ints = (from_bytes(key[_TS_BYTES:], "little") for key in keys)
        # Sums stay unreduced: Python ints are exact, and reducing once per
        # fingerprint is cheaper than once per item.
        self._keys: list[bytes] = keys
        self._sums: list[int] = list(accumulate(ids_as_ints, initial=0))

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        return ((_key_ts(key), _key_id(key)) for key in self._keys)

    def __contains__(self, item: object) -> bool:
        try:
            key = _validated_key(item)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return False
        return self._has_key(key)

    def __repr__(self) -> str:
        return f"SortedItems(<{len(self)} items>)"

    def index(self, bound: Bound) -> int:
        """How many items lie below ``bound``: the index of the first at or above it."""
        return bisect_left(self._keys, bound.key)

    def fingerprint(self, start: int = 0, stop: int | None = None) -> bytes:
        """The fingerprint of the items at indices ``[start, stop)``."""
        stop = len(self._keys) if stop is None else stop
        if not 0 <= start <= stop <= len(self._keys):
            raise IndexError(f"no such range of items: [{start}, {stop})")
        return _fingerprint(self._sums[stop] - self._sums[start], stop - start)

    def _has_key(self, key: bytes, start: int = 0, stop: int | None = None) -> bool:
        stop = len(self._keys) if stop is None else stop
        index = bisect_left(self._keys, key, start, stop)
        return index < stop and self._keys[index] == key


def fingerprint_of(items: Iterable[tuple[int, bytes]]) -> bytes:
    """The fingerprint of a whole set of items (the spec's test vectors use it)."""
    return SortedItems(items).fingerprint()


# --- Messages ---------------------------------------------------------------


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


# --- Tuning -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Tuning:
    frame_bytes: int
    buckets: int
    id_list_threshold: int

    def __post_init__(self) -> None:
        _check_int(
            "frame_bytes", self.frame_bytes, RECONCILE_MIN_FRAME_BYTES, RECONCILE_MAX_MESSAGE_BYTES
        )
        _check_int("buckets", self.buckets, RECONCILE_MIN_BUCKETS, RECONCILE_MAX_BUCKETS)
        # At least one item per bucket, so a split never yields an empty bucket.
        _check_int(
            "id_list_threshold",
            self.id_list_threshold,
            self.buckets,
            RECONCILE_MAX_ID_LIST_THRESHOLD,
        )


def _check_int(name: str, value: object, lowest: int, highest: int) -> None:
    if type(value) is not int or not lowest <= value <= highest:
        raise ValueError(f"{name} must be an int in [{lowest}, {highest}], not {value!r}")


# --- One round --------------------------------------------------------------


class _Overflow(Exception):
    """The outgoing message is full; it has been closed."""


class _Round:
    """Answers one incoming message, as initiator or responder.

    Differences found go to ``have`` (ours, not theirs) and ``need`` (theirs,
    not ours) as sort keys; only the initiator collects them.
    """

    def __init__(
        self, items: SortedItems, tuning: _Tuning, *, initiator: bool, close_at: Bound
    ) -> None:
        self._items = items
        self._keys = items._keys
        self._tuning = tuning
        self._initiator = initiator
        self._close_at = close_at  # upper bound of the last range still in play
        self.writer = _MessageWriter(tuning.frame_bytes)
        self.have: list[bytes] = []
        self.need: list[bytes] = []

    def answer(self, ranges: Iterable[Range]) -> None:
        try:
            for incoming in ranges:
                self._answer_range(incoming)
        except _Overflow:
            pass

    def _answer_range(self, incoming: Range) -> None:
        if incoming.mode is Mode.SKIP:
            self.writer.skip(incoming.upper)
            return
        start = self._items.index(incoming.lower)
        stop = bisect_left(self._keys, incoming.upper.key, start)
        if incoming.mode is Mode.FINGERPRINT:
            if self._items.fingerprint(start, stop) == incoming.fingerprint:
                self.writer.skip(incoming.upper)
            else:
                self.split(incoming.lower, incoming.upper, start, stop)
        elif incoming.mode is Mode.ID_LIST:
            if self._initiator:
                self._settle_id_list(incoming, start, stop)
            else:
                self._answer_id_list(incoming, start, stop)
        else:  # ID_DIFF: respond() refuses it, so we are the initiator
            self._settle_id_diff(incoming, start, stop)

    # Splitting a range that differs.

    def split(self, lower: Bound, upper: Bound, start: int, stop: int) -> None:
        count = stop - start
        if count < self._tuning.id_list_threshold:
            self._send_items(lower, upper, self._keys[start:stop])
            return
        buckets = self._tuning.buckets
        edges = [start + count * part // buckets for part in range(buckets + 1)]
        # The first bucket starts at ``lower``, the last ends at ``upper``: the
        # buckets tile exactly the range we were sent.
        for part in range(buckets):
            bucket_start, bucket_stop = edges[part], edges[part + 1]
            bucket_upper = upper if part == buckets - 1 else self._bound_before(bucket_stop)
            fingerprint = self._items.fingerprint(bucket_start, bucket_stop)
            if not self.writer.try_add(bucket_upper, Mode.FINGERPRINT, fingerprint):
                self._close()

    def _bound_before(self, index: int) -> Bound:
        return _bound_between(self._keys[index - 1], self._keys[index])

    def _send_items(self, lower: Bound, upper: Bound, keys: list[bytes]) -> None:
        if self.writer.try_add(upper, Mode.ID_LIST, _encode_items(keys, lower.ts)):
            return
        # Too long for what is left: send the items that fit, up to a bound
        # between the last one sent and the next, then close the message.
        room = self.writer.room() - _MAX_BOUND_BYTES - 1
        count = min(_items_that_fit(keys, lower.ts, room), len(keys) - 1)
        if count > 0:
            cut = _bound_between(keys[count - 1], keys[count])
            added = self.writer.try_add(cut, Mode.ID_LIST, _encode_items(keys[:count], lower.ts))
            assert added, "the room estimate is an upper bound on the size"
        self._close()

    def _close(self) -> None:
        writer = self.writer
        start = self._items.index(writer.cursor)
        stop = self._items.index(self._close_at)
        writer.close(self._close_at, self._items.fingerprint(start, stop))
        raise _Overflow

    # Settling ranges from item lists.

    def _settle_id_list(self, incoming: Range, start: int, stop: int) -> None:
        """Initiator: the responder listed its items; both differences follow."""
        ours = self._keys[start:stop]
        theirs = set(incoming.items)
        ours_set = set(ours)
        self.have.extend(key for key in ours if key not in theirs)
        self.need.extend(key for key in incoming.items if key not in ours_set)
        self.writer.skip(incoming.upper)

    def _settle_id_diff(self, incoming: Range, start: int, stop: int) -> None:
        """Initiator: the responder said what it lacks and what it adds."""
        for key in incoming.items:
            if not self._items._has_key(key, start, stop):
                raise ReconcileError("ID_DIFF says the responder lacks an item we do not have")
        for key in incoming.extra_items:
            if self._items._has_key(key, start, stop):
                raise ReconcileError("ID_DIFF offers an item we already have")
        self.have.extend(incoming.items)
        self.need.extend(incoming.extra_items)
        self.writer.skip(incoming.upper)

    def _answer_id_list(self, incoming: Range, start: int, stop: int) -> None:
        """Responder: answer the initiator's item list with the differences."""
        lacking = [key for key in incoming.items if not self._items._has_key(key, start, stop)]
        extras = self._extras(incoming.items, start, stop)
        if not lacking and not extras:
            self.writer.skip(incoming.upper)
            return
        # _extras gathers at most one more item than the message can take: if
        # it stopped early, the last one is a fence and is never sent.
        complete = len(extras) <= self._extras_cap()
        lower_ts = incoming.lower.ts
        payload = _encode_items(lacking, lower_ts) + _encode_items(extras, lower_ts)
        if complete and self.writer.try_add(incoming.upper, Mode.ID_DIFF, payload):
            return
        self._send_partial_diff(incoming.lower, lacking, extras, complete)

    def _extras_cap(self) -> int:
        return max(0, self.writer.room()) // _MIN_ITEM_BYTES

    def _extras(self, their_keys: tuple[bytes, ...], start: int, stop: int) -> list[bytes]:
        """Our items in [start, stop) missing from theirs, at most cap + 1 of them.

        Stopping early bounds the work when a hostile list covers a huge range.
        """
        theirs = set(their_keys)
        limit = self._extras_cap() + 1
        # At most len(theirs) of our keys are skipped as common, so this many
        # keys hold `limit` extras if the range has that many.
        scan_stop = min(stop, start + len(theirs) + limit)
        extras = [key for key in self._keys[start:scan_stop] if key not in theirs]
        return extras[:limit]

    def _send_partial_diff(
        self, lower: Bound, lacking: list[bytes], extras: list[bytes], complete: bool
    ) -> None:
        fence = None if complete else extras[-1]
        events = sorted(lacking + extras)
        if fence is not None:
            events = events[: events.index(fence) + 1]
        count = self._diff_items_that_fit(events, set(extras), lower.ts)
        count = min(count, len(events) - 1)
        if count > 0:
            cut = _bound_between(events[count - 1], events[count])
            sent_lacking = [key for key in lacking if key < cut.key]
            sent_extras = [key for key in extras if key < cut.key]
            payload = _encode_items(sent_lacking, lower.ts) + _encode_items(sent_extras, lower.ts)
            added = self.writer.try_add(cut, Mode.ID_DIFF, payload)
            assert added, "the room estimate is an upper bound on the size"
        self._close()

    def _diff_items_that_fit(self, events: list[bytes], extras: set[bytes], lower_ts: int) -> int:
        room = self.writer.room() - _MAX_BOUND_BYTES - 1
        used = 0
        previous_ts = {True: lower_ts, False: lower_ts}  # one delta chain per list
        counts = {True: 0, False: 0}
        for index, key in enumerate(events):
            which = key in extras
            ts = _key_ts(key)
            used += _varint_size(ts - previous_ts[which]) + RECONCILE_ID_BYTES
            counts[which] += 1
            if used + _varint_size(counts[True]) + _varint_size(counts[False]) > room:
                return index
            previous_ts[which] = ts
        return len(events)


def _last_open_upper(ranges: Sequence[Range]) -> Bound | None:
    """The upper bound of the last range that is not SKIP, if any."""
    for incoming in reversed(ranges):
        if incoming.mode is not Mode.SKIP:
            return incoming.upper
    return None


# --- Public entry points ----------------------------------------------------


class ReconcileStep(NamedTuple):
    """What the initiator learnt from one reply, and what to send next."""

    next_message: bytes | None  # None: reconciliation is complete
    have_ids: list[bytes]  # ids we have and the responder lacks
    need_ids: list[bytes]  # ids the responder has and we lack


def respond(
    items: SortedItems,
    message: bytes,
    *,
    frame_bytes: int = RECONCILE_DEFAULT_FRAME_BYTES,
    buckets: int = RECONCILE_DEFAULT_BUCKETS,
    id_list_threshold: int = RECONCILE_DEFAULT_ID_LIST_THRESHOLD,
) -> bytes:
    """The responder's answer to one initiator message. Stateless between rounds.

    Raises ReconcileError, and nothing else, for any malformed message.
    """
    tuning = _Tuning(frame_bytes, buckets, id_list_threshold)
    ranges = decode_message(message)
    if any(incoming.mode is Mode.ID_DIFF for incoming in ranges):
        raise ReconcileError("only a responder sends ID_DIFF")
    close_at = _last_open_upper(ranges)
    if close_at is None:
        return bytes([RECONCILE_VERSION])
    current = _Round(items, tuning, initiator=False, close_at=close_at)
    current.answer(ranges)
    return current.writer.finish()


class Reconciler:
    """The initiator's side: ``initiate()``, then ``reconcile(reply)`` until done.

    Each call to ``reconcile`` returns the next message to send (None when
    finished) and the differences learnt from that reply. Over a whole run the
    ids returned are exactly the symmetric difference, each reported once.
    """

    def __init__(
        self,
        items: SortedItems,
        *,
        frame_bytes: int = RECONCILE_DEFAULT_FRAME_BYTES,
        buckets: int = RECONCILE_DEFAULT_BUCKETS,
        id_list_threshold: int = RECONCILE_DEFAULT_ID_LIST_THRESHOLD,
        max_rounds: int = RECONCILE_MAX_ROUNDS,
    ) -> None:
        self._items = items
        self._tuning = _Tuning(frame_bytes, buckets, id_list_threshold)
        _check_int("max_rounds", max_rounds, 1, 2**31)
        self._max_rounds = max_rounds
        self._rounds = 0
        self._started = False
        self._done = False
        self._reported: set[bytes] = set()

    @property
    def rounds(self) -> int:
        """Replies processed so far: the round trips, once done."""
        return self._rounds

    @property
    def done(self) -> bool:
        return self._done

    def initiate(self) -> bytes:
        """The first message: fingerprints of buckets of our set, or its items."""
        if self._started:
            raise RuntimeError("initiate() was already called")
        self._started = True
        first = _Round(self._items, self._tuning, initiator=True, close_at=INFINITY)
        try:
            first.split(BOTTOM, INFINITY, 0, len(self._items))
        except _Overflow:
            pass
        return first.writer.finish()

    def reconcile(self, message: bytes) -> ReconcileStep:
        """Take the responder's reply; return the next message and what it taught."""
        if not self._started or self._done:
            raise RuntimeError("reconcile() needs initiate() first and stops once done")
        ranges = decode_message(message)
        close_at = _last_open_upper(ranges)
        if close_at is None:
            self._rounds += 1
            self._done = True
            return ReconcileStep(None, [], [])
        current = _Round(self._items, self._tuning, initiator=True, close_at=close_at)
        current.answer(ranges)  # may refuse the reply: nothing is recorded before this
        self._rounds += 1
        have, need = self._first_reports(current.have), self._first_reports(current.need)
        if not current.writer.has_ranges:
            self._done = True
            return ReconcileStep(None, have, need)
        if self._rounds >= self._max_rounds:
            raise ReconcileError(f"no agreement after {self._max_rounds} round trips")
        return ReconcileStep(current.writer.finish(), have, need)

    def _first_reports(self, keys: list[bytes]) -> list[bytes]:
        """Ids not reported before: ranges folded into a closing fingerprint come back."""
        fresh = []
        for key in keys:
            if key not in self._reported:
                self._reported.add(key)
                fresh.append(_key_id(key))
        return fresh
