"""A short-lived cache of the search pages seen by visitors who are not logged in.

Those pages hold no personal data and no form token, so one rendering serves
every visitor asking the same URL in the same language. The cache is
emptied by the database's change signal after any committed change to the
annonces or the peers (``changed``), and an entry lives at most
PAGE_CACHE_TTL_S seconds, which bounds how stale a page can be when another
process (a web worker on PostgreSQL, the offline CLI) changed the data.
Logged-in residents always get a fresh page.

``PeerNames`` keeps the peers' association names that every results page
shows, read at most every PEER_NAMES_TTL_S rather than once per page, and
again after this process changed the peers; peers are added and removed by
the operator, rarely, possibly from another process, which the short expiry
covers.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from storage.annonces import ANNONCES
from storage.db import Changes, Connection
from storage.directory import DIRECTORY
from storage.peers import PEERS

PAGE_CACHE_TTL_S = 2.0
PAGE_CACHE_ENTRIES = 512
PEER_NAMES_TTL_S = 10.0


class PageCache:
    def __init__(self, ttl_s: float = PAGE_CACHE_TTL_S, entries: int = PAGE_CACHE_ENTRIES) -> None:
        self._ttl, self._entries = ttl_s, entries
        self._pages: OrderedDict[tuple, tuple[float, str]] = OrderedDict()

    def get(self, key: tuple) -> str | None:
        found = self._pages.get(key)
        if found is None or found[0] < time.monotonic():
            return None
        return found[1]

    def put(self, key: tuple, text: str) -> None:
        self._pages[key] = (time.monotonic() + self._ttl, text)
        self._pages.move_to_end(key)
        while len(self._pages) > self._entries:
            self._pages.popitem(last=False)

    def clear(self) -> None:
        self._pages.clear()

    def changed(self, changes: Changes) -> None:
        if ANNONCES in changes or PEERS in changes or DIRECTORY in changes:
            self.clear()


class PeerNames:
    """The peers' association names, by node id, loaded at most every ``ttl_s``."""

    def __init__(
        self,
        load: Callable[[Connection], dict[bytes, str]],
        ttl_s: float = PEER_NAMES_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load, self._ttl, self._clock = load, ttl_s, clock
        self._names: dict[bytes, str] = {}
        self._expires = float("-inf")

    def get(self, conn: Connection) -> dict[bytes, str]:
        if self._clock() >= self._expires:
            self._names = self._load(conn)
            self._expires = self._clock() + self._ttl
        return self._names

    def clear(self) -> None:
        self._expires = float("-inf")

    def changed(self, changes: Changes) -> None:
        if PEERS in changes or DIRECTORY in changes:
            self.clear()
