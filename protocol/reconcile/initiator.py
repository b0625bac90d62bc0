"""The initiator's state machine: ``Reconciler``, and the ``ReconcileStep`` each reply yields.

The initiator keeps only what it already reported, so a range that comes back
after a frame overflow is not reported twice.
"""

from __future__ import annotations

from typing import NamedTuple

from protocol.errors import ReconcileError
from protocol.limits import (
    RECONCILE_DEFAULT_BUCKETS,
    RECONCILE_DEFAULT_FRAME_BYTES,
    RECONCILE_DEFAULT_ID_LIST_THRESHOLD,
    RECONCILE_MAX_ROUNDS,
)
from protocol.reconcile.items import BOTTOM, INFINITY, SortedItems, _key_id
from protocol.reconcile.messages import decode_message
from protocol.reconcile.rounds import (
    _check_int,
    _last_open_upper,
    _Overflow,
    _Round,
    _Tuning,
)


class ReconcileStep(NamedTuple):
    """What the initiator learnt from one reply, and what to send next."""

    next_message: bytes | None  # None: reconciliation is complete
    have_ids: list[bytes]  # ids we have and the responder lacks
    need_ids: list[bytes]  # ids the responder has and we lack


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
