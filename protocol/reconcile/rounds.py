"""One round of reconciliation: answering every range of an incoming message.

The same ``_Round`` serves both sides: equal fingerprints are answered SKIP,
differing ones are split into buckets or answered with an item list, and item
lists are settled (by the initiator) or answered with ID_DIFF (by the
responder). When the outgoing message is full, the round closes it with one
FINGERPRINT range over everything still in play, so nothing has to be
remembered for later.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from protocol.errors import ReconcileError
from protocol.limits import (
    RECONCILE_ID_BYTES,
    RECONCILE_MAX_BUCKETS,
    RECONCILE_MAX_ID_LIST_THRESHOLD,
    RECONCILE_MAX_MESSAGE_BYTES,
    RECONCILE_MIN_BUCKETS,
    RECONCILE_MIN_FRAME_BYTES,
)
from protocol.reconcile.items import (
    Bound,
    SortedItems,
    _bound_between,
    _key_ts,
    _varint_size,
)
from protocol.reconcile.messages import (
    _MAX_BOUND_BYTES,
    _MIN_ITEM_BYTES,
    Mode,
    Range,
    _encode_items,
    _items_that_fit,
    _MessageWriter,
)

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
