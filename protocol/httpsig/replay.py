"""Replay protection for signed requests: ``ReplayGuard``, pure and in memory."""

from __future__ import annotations

import heapq

from protocol.errors import ReplayError, StaleRequestError
from protocol.limits import REPLAY_GUARD_CAPACITY, REQUEST_SIGNATURE_WINDOW_S


class ReplayGuard:
    """Remembers recent (key id, nonce) pairs to refuse a request seen before.

    Pure and in memory; time is an argument. A pair is kept until its
    ``created`` falls out of the window (``created + window < now``): after
    that the freshness check refuses the request anyway. Memory is bounded by
    ``capacity``: when full, the entry with the oldest ``created`` is evicted,
    and the guard then refuses every request created at or before that entry,
    since it can no longer tell whether those are replays; when full, a request
    older than every entry it holds is refused for the same reason. So it
    never accepts a replay, even under a flood; it may refuse late honest
    requests instead.

    Not thread-safe: meant for one asyncio event loop.
    """

    def __init__(
        self, *, window: int = REQUEST_SIGNATURE_WINDOW_S, capacity: int = REPLAY_GUARD_CAPACITY
    ) -> None:
        if window < 0 or capacity < 1:
            raise ValueError("a replay guard needs a non-negative window and room for one entry")
        self.window = window
        self.capacity = capacity
        self._created: dict[tuple[str, str | bytes], int] = {}
        self._by_age: list[tuple[int, int, tuple[str, str | bytes]]] = []
        self._inserted = 0  # breaks ties in the heap without comparing keys
        self._evicted_up_to: int | None = None

    def __len__(self) -> int:
        return len(self._created)

    def check_and_remember(self, key_id: str, nonce: str | bytes, created: int, now: int) -> None:
        """Raise ReplayError if (key_id, nonce) was seen; otherwise remember it.

        ``nonce`` is whatever makes a request unique for this key: Troc uses
        the nonce parameter; the signature bytes work as well.
        """
        self._forget_before(now - self.window)
        if created < now - self.window:
            raise StaleRequestError("created before the replay window")
        if self._evicted_up_to is not None and created <= self._evicted_up_to:
            raise ReplayError("too many recent requests to rule out a replay of this one")
        entry = (key_id, nonce)
        if entry in self._created:
            raise ReplayError("this request was already received")
        if len(self._created) >= self.capacity:
            # Full: make room by forgetting the oldest entry, unless this request
            # is older still, in which case it could never be told from a replay.
            if created <= self._by_age[0][0]:
                raise ReplayError("too many recent requests to rule out a replay of this one")
            self._evict_oldest()
        self._created[entry] = created
        heapq.heappush(self._by_age, (created, self._inserted, entry))
        self._inserted += 1

    def _forget_before(self, oldest_kept: int) -> None:
        while self._by_age and self._by_age[0][0] < oldest_kept:
            _, _, entry = heapq.heappop(self._by_age)
            del self._created[entry]
        if self._evicted_up_to is not None and self._evicted_up_to < oldest_kept:
            self._evicted_up_to = None  # everything it covered is stale by now

    def _evict_oldest(self) -> None:
        created, _, entry = heapq.heappop(self._by_age)
        del self._created[entry]
        self._evicted_up_to = max(created, self._evicted_up_to or created)
