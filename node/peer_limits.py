"""What one node may ask of this one: requests in flight, rates, and CPU, per node.

Every signed request of the federation API passes ``peer_limits_middleware``
once authenticated: a node may have at most PEER_MAX_CONCURRENT_REQUESTS
requests in flight here, and each kind of request is paced by a token bucket
per node (gossip, messages, reports: the rates and bursts of
protocol/limits.py, docs/protocol-federation.md section 10). A stream
(node.federation.stream) is opened by one gossip request and then counts
apart: at most STREAM_MAX_PER_NODE open per node, and each request it
carries takes a token of its own bucket (STREAM_FRAMES). Beyond a bound
the answer is 429 with Retry-After, which the sender treats as a reason to
back off, not as a refusal; nothing is stored.

CPU-heavy work for a node (answering a reconciliation round) runs in a
worker thread, PEER_RECONCILE_CONCURRENCY at a time per node and one at a
time in all (``reconcile_slot``), so that no node can hold the event loop
that serves residents' pages.

All of it is in memory, per process: the bounds are for the node's
protection, not a ledger; a restart forgets them.
"""

from __future__ import annotations

import asyncio
import math
from collections import OrderedDict
from collections.abc import Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web

from node.errors import TooManyRequests
from protocol import limits

MAX_TRACKED_NODES = 10_000  # buckets kept at once; the longest idle go first


@dataclass(frozen=True)
class Rate:
    per_s: float
    burst: int


GOSSIP = Rate(limits.PEER_GOSSIP_RATE_PER_S, limits.PEER_GOSSIP_BURST)
# A request on a stream costs no signature check and no replay record: its own, larger bucket.
STREAM_FRAMES = Rate(limits.STREAM_FRAME_RATE_PER_S, limits.STREAM_FRAME_BURST)
STREAM_ENDPOINT = "stream"
MESSAGES = Rate(limits.PEER_MESSAGE_RATE_PER_MIN / 60, limits.PEER_MESSAGE_BURST)
REPORTS = Rate(limits.PEER_REPORT_RATE_PER_H / 3600, limits.PEER_REPORT_BURST)
# Thanks (docs/protocol-thanks.md) are point to point like messages, at the same rate.
RATE_BY_ENDPOINT = {"message": MESSAGES, "report": REPORTS, "exchange": MESSAGES, "merci": MESSAGES}


def rate_for(path: str) -> tuple[str, Rate]:
    endpoint = path.rstrip("/").rsplit("/", 1)[-1]
    rate = RATE_BY_ENDPOINT.get(endpoint, GOSSIP)
    return ("gossip" if rate is GOSSIP else endpoint), rate


class PeerLimits:
    """Token buckets and requests in flight, per node; the clock is the node's."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._buckets: OrderedDict[tuple[bytes, str], tuple[float, float]] = OrderedDict()
        self.in_flight: dict[bytes, int] = {}
        self._reconcile: dict[bytes, asyncio.Semaphore] = {}
        self._cpu = asyncio.Semaphore(1)
        self.streams: dict[bytes, int] = {}

    def take(self, node_id: bytes, kind: str, rate: Rate) -> None:
        """Spend one token of the node's bucket for ``kind``, or TooManyRequests."""
        now = self._clock()
        key = (node_id, kind)
        tokens, stamp = self._buckets.pop(key, (float(rate.burst), now))
        tokens = min(rate.burst, tokens + max(0.0, now - stamp) * rate.per_s)
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            wait = math.ceil((1 - tokens) / rate.per_s)
            raise TooManyRequests(f"too many {kind} requests from this node", retry_after=wait)
        self._buckets[key] = (tokens - 1, now)
        while len(self._buckets) > MAX_TRACKED_NODES:
            self._buckets.popitem(last=False)

    def request(self, node_id: bytes):
        """One request of the node in flight, within PEER_MAX_CONCURRENT_REQUESTS."""
        return _held(self.in_flight, node_id, limits.PEER_MAX_CONCURRENT_REQUESTS,
                     TooManyRequests("too many requests from this node at once", retry_after=1))

    def stream(self, node_id: bytes):
        """One stream of the node open, within STREAM_MAX_PER_NODE (it is not a request in
        flight: the requests it carries each take a token of STREAM_FRAMES)."""
        return _held(self.streams, node_id, limits.STREAM_MAX_PER_NODE,
                     TooManyRequests("too many streams from this node at once", retry_after=60))

    @asynccontextmanager
    async def reconcile_slot(self, node_id: bytes):
        """The right to spend CPU on one of the node's reconciliation rounds."""
        mine = self._reconcile.setdefault(
            node_id, asyncio.Semaphore(limits.PEER_RECONCILE_CONCURRENCY)
        )
        async with mine, self._cpu:
            yield
        if not mine.locked() and len(self._reconcile) > MAX_TRACKED_NODES:
            self._reconcile.pop(node_id, None)



@asynccontextmanager
async def _held(counts: dict[bytes, int], node_id: bytes, limit: int, refusal: Exception):
    """One more of the node's, while it runs; ``refusal`` raised past ``limit``."""
    if counts.get(node_id, 0) >= limit:
        raise refusal
    counts[node_id] = counts.get(node_id, 0) + 1
    try:
        yield
    finally:
        counts[node_id] -= 1
        if not counts[node_id]:
            del counts[node_id]


def peer_limits_middleware(limits_of: Callable[[web.Request], PeerLimits],
                           node_of: Callable[[web.Request], bytes]):  # fmt: skip
    """The middleware that holds every authenticated request to its node's bounds."""

    @web.middleware
    async def peer_limits(request: web.Request, handler) -> web.StreamResponse:
        bounds, node_id = limits_of(request), node_of(request)
        kind, rate = rate_for(request.path)
        bounds.take(node_id, kind, rate)
        if kind == "gossip" and request.path.endswith("/" + STREAM_ENDPOINT):
            async with bounds.stream(node_id):
                return await handler(request)
        async with bounds.request(node_id):
            return await handler(request)

    return peer_limits
