"""The federation's in-memory state, held by the app under typed keys.

Nothing here is durable: the outbox and each peer's delivery state live in
the database. These are signals and caches that make the durable parts cheap:

- ``SyncTrigger``: requests for an anti-entropy pass, with one peer or all;
- ``RecentIds``: a bounded set of ids that expire (ids not worth fetching
  again, ids a peer holds);
- ``Promises``: ids a peer promised to push (asked of one at a time, never renewed)
  or that we are fetching, and the peers standing by if a promise lapses;
- ``ReconcileSet``: the reconciled set as ``SortedItems``, rebuilt only after
  it changed, so a reconciliation round does not re-read the whole table;
- ``Traffic``: bytes and requests in and out over the federation API;
- ``CourierState``: the courier's kinds, wake-ups and locks (node/courier.py).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field

from protocol.envelope import annonce_id, split_envelope
from protocol.errors import FutureError, ProtocolError
from protocol.reconcile import SortedItems
from storage import annonces as annonce_store
from storage.annonces import ANNONCES
from storage.db import Changes, Database
from storage.outbox import OUTBOX

# How stale the cached reconciled set may be when another process writes the database.
RECONCILE_SET_MAX_AGE_S = 30.0
# An id we asked one peer for is not asked of another for this long: its push
# is on the way. If it never comes, anti-entropy fetches it later.
PROMISED_IDS_TTL_S = 10.0
# Peers that offered an id while another's promise of it ran, remembered to
# fetch it from if that promise lapses.
PROMISE_STANDBYS = 2
# An id offered to us and refused (blocked origin, invalid, superseded) is not
# fetched again for this long.
IGNORED_IDS_TTL_S = 3600.0
# A peer that announced an id to us holds it: it is not offered to that peer
# for this long (its row in the outbox is dropped unsent).
PEER_HOLDS_TTL_S = 120.0
# An id a peer did not serve when we fetched it (it hides that annonce) is not
# asked of that peer again for this long.
UNSERVED_IDS_TTL_S = 3600.0
RECENT_IDS_CAPACITY = 100_000
FROM_THE_FUTURE = FutureError.code


def envelope_id(envelope: bytes) -> bytes | None:
    """The annonce id of an envelope's body, or None if it is not an envelope."""
    try:
        _, body, _ = split_envelope(envelope)
    except ProtocolError:
        return None
    return annonce_id(body)


def not_worth_asking_again(
    ignored: RecentIds, envelopes: list[bytes], kept: set[bytes], future: set[int]
) -> None:
    """Remember the ids of ``envelopes`` not kept, except those refused as from the future.

    A revision refused, superseded or of a blocked origin will fare no better
    next time; one dated ahead of our clock may be accepted once it is due.
    """
    for index, envelope in enumerate(envelopes):
        key = None if index in future else envelope_id(envelope)
        if key is not None and key not in kept:
            ignored.add(key)


class SyncTrigger:
    """Pending requests for anti-entropy passes: with some peers, or with all."""

    def __init__(self) -> None:
        self._peers: set[bytes] = set()
        self._all = False
        self._event = asyncio.Event()

    def request(self, peer_id: bytes | None = None) -> None:
        """Ask for a pass with ``peer_id`` soon, or with every peer if None."""
        if peer_id is None:
            self._all = True
        else:
            self._peers.add(peer_id)
        self._event.set()

    async def wait(self, timeout: float) -> tuple[bool, set[bytes]]:
        """Wait for requests up to ``timeout``; return (all peers?, these peers) and reset."""
        from node.clock import wait_until_set  # node.clock reads node.keys, which reads us

        await wait_until_set(self._event, timeout)
        everyone, peers = self._all, self._peers
        self._all, self._peers = False, set()
        self._event.clear()
        return everyone, peers


class RecentIds:
    """Ids remembered for ``ttl`` seconds, each with who it is held for.

    At most ``capacity`` are kept; the oldest go first. Used for the ids a
    peer promised to push (held for that peer) and for ids not worth fetching
    again (held for nobody in particular).
    """

    def __init__(
        self, *, ttl: float, capacity: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl
        self._capacity = capacity
        self._clock = clock
        self._held: OrderedDict[bytes, tuple[float, bytes]] = OrderedDict()

    def __contains__(self, item: object) -> bool:
        return self._holder(item) is not None

    def __len__(self) -> int:
        return len(self._held)

    def add(self, item: bytes, holder: bytes = b"") -> None:
        self._held.pop(item, None)
        self._held[item] = (self._clock() + self._ttl, holder)
        self._forget_old()

    def claim(self, item: bytes, holder: bytes) -> bool:
        """Hold ``item`` for ``holder`` and say True, unless another holds it already."""
        current = self._holder(item)
        if current is not None and current != holder:
            return False
        self.add(item, holder)
        return True

    def discard(self, item: bytes) -> None:
        self._held.pop(item, None)

    def clear(self) -> None:
        self._held.clear()

    def holder(self, item: object) -> bytes | None:
        return self._holder(item)

    def _holder(self, item: object) -> bytes | None:
        found = self._held.get(item)  # type: ignore[arg-type]
        if found is None or found[0] <= self._clock():
            return None
        return found[1]

    def _forget_old(self) -> None:
        now = self._clock()
        while self._held:
            oldest, (deadline, _) = next(iter(self._held.items()))
            if deadline > now and len(self._held) <= self._capacity:
                return
            del self._held[oldest]


@dataclass(slots=True)
class _Promise:
    deadline: float
    holder: bytes
    standbys: list[bytes]
    pull: bool  # a fetch of ours, not a push it promised


class Promises:
    """Ids a peer promised to push: each asked of one peer at a time, and never renewed by it.

    ``claim`` says whether to ask ``holder`` for an id it announced: yes if
    nobody promised it, or if ``holder`` itself did and its promise still runs
    (a peer retrying a push that failed) — without renewing it; no if another
    peer promised it (its push is on the way). ``kept`` forgets the promise of
    an id that has been stored.

    A peer refused because another's promise runs is remembered as a standby
    (at most ``PROMISE_STANDBYS`` per id): ``lapsed`` hands each promise that
    ran out unkept to its first standby, which is then fetched from (a pull,
    answered at once), so a push lost on the way costs one promise, not a
    wait for anti-entropy. A peer that let its promise lapse is not asked
    again while another stands by: re-announcing an id without pushing it
    cannot hold it back longer than one promise. ``fetching`` holds an id
    while a fetch of it runs, so two passes, or a pass and a push (from the
    same peer or not), do not bring the same revision twice. Promises are
    kept in the order of their deadlines.
    """

    def __init__(self, *, ttl: float, capacity: int,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self._ttl = ttl
        self._capacity = capacity
        self._clock = clock
        self._open: OrderedDict[bytes, _Promise] = OrderedDict()

    def __contains__(self, item: object) -> bool:
        return self._running(item) is not None

    def __len__(self) -> int:
        return len(self._open)

    def claim(self, item: bytes, holder: bytes) -> bool:
        running = self._running(item)
        if running is not None:
            if running.holder == holder and not running.pull:
                return True
            _stand_by(running, holder)
            return False
        lapsed = self._open.get(item)
        if lapsed is not None and lapsed.holder == holder and lapsed.standbys:
            return False  # it let its promise lapse: those standing by go first
        self._promise(item, holder)
        return True

    def fetching(self, item: bytes, holder: bytes) -> bool:
        """Hold ``item`` while we fetch it from ``holder``; False if a push (``holder``'s own
        included) or another's fetch of it runs, ``holder`` then standing by."""
        running = self._running(item)
        if running is not None and (running.holder != holder or not running.pull):
            _stand_by(running, holder)
            return False
        self._promise(item, holder, pull=True)
        return True

    def kept(self, item: bytes) -> None:
        self._open.pop(item, None)

    def fetched(self, items: Iterable[bytes], holder: bytes) -> None:
        """Our fetch of ``items`` from ``holder`` ended: what it did not bring is
        nobody's to bring now; each goes to its standby at the next ``lapsed``."""
        now = self._clock()
        for item in items:
            promise = self._open.get(item)
            if promise is None or not promise.pull or promise.holder != holder:
                continue
            if promise.standbys:
                promise.deadline = now
                self._open.move_to_end(item, last=False)  # deadlines stay in order
            else:
                del self._open[item]

    def holder(self, item: bytes) -> bytes | None:
        """Who is bringing ``item`` now (its promise runs), if anyone."""
        running = self._running(item)
        return running.holder if running is not None else None

    def lapsed(self) -> dict[bytes, list[bytes]]:
        """The ids whose promise ran out unkept, by the standby now asked for each.

        Each is promised anew by that standby (its fetch is on the way), the
        others standing by still; an id nobody else offered is forgotten.
        """
        now = self._clock()
        handed: dict[bytes, list[bytes]] = {}
        due: list[tuple[bytes, _Promise]] = []
        while self._open:
            item, promise = next(iter(self._open.items()))
            if promise.deadline > now:
                break
            del self._open[item]
            due.append((item, promise))
        for item, promise in due:
            if promise.standbys:
                standby, *others = promise.standbys
                self._promise(item, standby, others, pull=True)
                handed.setdefault(standby, []).append(item)
        return handed

    def _running(self, item: object) -> _Promise | None:
        promise = self._open.get(item)  # type: ignore[arg-type]
        if promise is None or promise.deadline <= self._clock():
            return None
        return promise

    def _promise(self, item: bytes, holder: bytes, standbys: list[bytes] | None = None, *,
                 pull: bool = False) -> None:  # fmt: skip
        """``holder`` promises ``item`` from now; those standing by for it still do."""
        old = self._open.pop(item, None)
        if standbys is None:
            standbys = [peer for peer in old.standbys if peer != holder] if old else []
        now = self._clock()
        self._open[item] = _Promise(now + self._ttl, holder, standbys, pull)
        while self._open:  # past capacity, or ran out with nobody standing by: forgotten
            oldest, promise = next(iter(self._open.items()))
            if len(self._open) <= self._capacity and (promise.deadline > now or promise.standbys):
                return
            del self._open[oldest]


def _stand_by(promise: _Promise, peer: bytes) -> None:
    if peer not in promise.standbys and len(promise.standbys) < PROMISE_STANDBYS:
        promise.standbys.append(peer)


class ReconcileSet:
    """The reconciled set (``storage.annonces.reconcile_items``), cached until it changes.

    The change signal (``changed``, registered on the database) marks it stale
    after any committed write to the annonces; ``max_age`` bounds how stale it
    can be when another process (a second web worker on PostgreSQL, the
    offline CLI) writes the same database, and how long a revision that
    expired meanwhile stays in it. Reading it never writes: expired revisions
    are left out of each build, and the purge (node.sync) deletes them in its
    own time. A large set is read and sorted off the event loop.
    """

    def __init__(self, *, max_age: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._max_age = max_age
        self._clock = clock
        self._items: SortedItems | None = None
        self._built_at = 0.0
        self._dirty = True
        self._lock = asyncio.Lock()

    def invalidate(self) -> None:
        self._dirty = True

    def changed(self, changes: Changes) -> None:
        if ANNONCES in changes:
            self._dirty = True

    async def get(self, db: Database, now: int) -> SortedItems:
        async with self._lock:
            stale = self._clock() - self._built_at > self._max_age
            if self._items is None or self._dirty or stale:
                # Cleared before reading: a change during the build marks it again.
                self._dirty = False
                self._items = await db.scan(_sorted_items, now)
                self._built_at = self._clock()
            return self._items


def _sorted_items(conn, now: int) -> SortedItems:
    return SortedItems(annonce_store.reconcile_items(conn, now=now))


@dataclass
class Traffic:
    """Federation traffic of this node since it started, headers included (estimated).

    Received: the requests peers sent us and the answers to our requests.
    Sent: our requests and our answers to theirs.
    """

    requests_received: int = 0
    bytes_received: int = 0
    requests_sent: int = 0
    bytes_sent: int = 0
    received_by_endpoint: dict[str, int] = field(default_factory=dict)

    def note_request(self, path: str) -> None:
        endpoint = path.rsplit("/", 1)[-1]
        if endpoint not in _ENDPOINTS:  # a stranger's paths must not grow this dict
            endpoint = "other"
        self.requests_received += 1
        self.received_by_endpoint[endpoint] = self.received_by_endpoint.get(endpoint, 0) + 1

    def as_dict(self) -> dict:
        return asdict(self)


_ENDPOINTS = frozenset({"announce", "push", "fetch", "reconcile", "node", "photo", "stream"})


# A WebSocket frame's own bytes (RFC 6455 section 5.2): 2 to 14; 6 for a masked frame
# under 126 bytes, what a client sends most.
WS_FRAME_OVERHEAD_BYTES = 6


def header_bytes(headers) -> int:
    """About what a header block costs on the wire: ``name: value\\r\\n`` each."""
    return sum(len(name) + len(value) + 4 for name, value in headers.items())


class CourierState:
    """The courier's in-memory side: its kinds, wake-ups, nodes heard from, one lock per node."""

    def __init__(self) -> None:
        self.kinds: list = []  # node.courier.ItemKind, in the order they go
        # Finds the URL of a destination that is not a peer (node.directory.check_url).
        self.resolve = None
        self.wakeup = asyncio.Event()
        self.heard: set[bytes] = set()
        self._locks: dict[bytes, asyncio.Lock] = {}

    def lock(self, node_id: bytes) -> asyncio.Lock:
        return self._locks.setdefault(node_id, asyncio.Lock())

    def changed(self, changes: Changes) -> None:
        """The change signal: anything queued wakes the dispatcher."""
        if OUTBOX in changes:
            self.wakeup.set()
