"""Items, their sort keys and bounds, and range fingerprints over a sorted item set.

An item ``(timestamp, id)`` is stored as its 40-byte sort key (8-byte
big-endian timestamp, then the id), so byte order is item order. A ``Bound``
is a timestamp and the shortest id prefix that separates two neighbouring
items. ``SortedItems`` keeps prefix sums of the ids, so any range's
fingerprint costs two bisects and one hash. The LEB128 varint lives here too:
a bound's encoding and a fingerprint's hash input both use it.
"""

from __future__ import annotations

import hashlib
import operator
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import accumulate, islice

from protocol.limits import (
    RECONCILE_FINGERPRINT_BYTES,
    RECONCILE_ID_BYTES,
    RECONCILE_INFINITY_TS,
)

_TS_BYTES = 8
_SUM_MODULUS = 1 << 256


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
