"""A short-lived cache of the search pages seen by visitors who are not logged in.

Those pages hold no personal data and no form token, so one rendering serves
every visitor asking the same URL in the same language. The cache is
emptied whenever this process stores new revisions (a revision listener),
and an entry lives at most PAGE_CACHE_TTL_S seconds, which bounds how stale a
page can be when another web worker (PostgreSQL) or the purge changed the
data. Logged-in residents always get a fresh page.
"""

from __future__ import annotations

import time
from collections import OrderedDict

PAGE_CACHE_TTL_S = 2.0
PAGE_CACHE_ENTRIES = 512


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

    async def revisions_stored(self, _accepted, _source) -> None:
        self.clear()
