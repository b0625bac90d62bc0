"""Private messages to members of other nodes: the durable queue's courier.

How a message travels from here::

    node.web.conversations stores a message whose other member is on another node
      └─ node.web.delivery.enqueue puts the exact federation message
         (protocol.conversations) in the message outbox, addressed to that
         member's node (storage.conversations), and wakes the courier
    message_courier, one task (message_delivery_ctx): whenever woken, or when
      a back-off runs out, runs deliver_message_batch until nothing is due
    deliver_message_batch(app): each due message in one signed request
      (PeerClient.prepare, then PeerClient.send) to its node's
      ``POST /federation/v1/message``:
      - answered 2xx: delivered (a duplicate too: the node had it already);
      - refused for good (4xx but 401, 403, 408 and 429): marked refused and
        taken off the queue, since it would fare no better; its writer sees it;
      - otherwise (unreachable, 5xx, 401, 403, …): kept, and tried again after
        a back-off; the later messages to that node wait as long, so that a
        conversation arrives in the order it was written.

Point to point, never gossiped: only the two members' nodes hold a
conversation. A node sends only to its peers, whose URLs it knows, so a
resident is told at once, before writing, that an annonce whose origin is not
a peer cannot be answered from here (node.web.conversations). A message whose
node stopped being a peer after it was queued waits, with back-off, in case
it becomes one again.

The back-off is per message: exponential from MESSAGE_RETRY_BASE_S, capped
at MESSAGE_RETRY_MAX_S, less up to MESSAGE_RETRY_JITTER of it at random so
that nodes do not all retry in step. Several processes sharing a database may
send one message twice: the receiver stores it once (its id).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass

from aiohttp import web

from node.errors import PeerBadAnswer, PeerError, PeerRefused
from node.keys import clock_key, db_key, message_wakeup_key, peer_client_key
from node.peer_client import PeerClient
from protocol.conversations import MESSAGE_PATH, decode_message_answer
from protocol.errors import ProtocolError
from protocol.identity import node_id_text
from storage import conversations as talk
from storage import peers as peer_store

log = logging.getLogger("troc.messages")

MESSAGE_BATCH = 50  # deliveries taken from the queue at once
MESSAGE_RETRY_BASE_S = 10
MESSAGE_RETRY_MAX_S = 6 * 3600
MESSAGE_RETRY_JITTER = 0.25  # up to this fraction of a delay is taken off at random
MESSAGE_IDLE_POLL_S = 60.0  # look at the queue at least this often (another process may fill it)
MESSAGE_MIN_WAIT_S = 1.0  # never poll faster than this unless woken


@dataclass(frozen=True)
class BatchReport:
    """What one batch did: messages delivered, refused for good, kept for later."""

    delivered: int = 0
    refused: int = 0
    failed: int = 0

    @property
    def attempted(self) -> int:
        return self.delivered + self.refused + self.failed


def message_retry_delay(tries: int, rand: Callable[[], float] = random.random) -> int:
    """Seconds to wait after a delivery failed, ``tries`` earlier failures included."""
    delay = min(MESSAGE_RETRY_MAX_S, MESSAGE_RETRY_BASE_S * 2 ** min(tries, 30))
    return max(1, round(delay * (1 - MESSAGE_RETRY_JITTER * rand())))


async def send_private_message(client: PeerClient, peer_url: str, payload: bytes) -> bool:
    """Deliver one queued message; whether the peer had it already."""
    answer = await client.send(client.prepare("POST", peer_url, MESSAGE_PATH, payload))
    try:
        return decode_message_answer(answer)
    except ProtocolError as exc:
        raise PeerBadAnswer(f"{peer_url} answered a malformed message ({exc.detail})") from None


async def deliver_message_batch(app: web.Application) -> BatchReport:
    """Try every due delivery once (but none after a failed one to the same node)."""
    due = await talk.due_deliveries(app[db_key], int(app[clock_key]()), MESSAGE_BATCH)
    held_back: set[bytes] = set()
    counts = {"delivered": 0, "refused": 0, "failed": 0}
    for delivery in due:
        if delivery.peer in held_back:
            continue
        outcome = await _deliver(app, delivery)
        counts[outcome] += 1
        if outcome == "failed":
            held_back.add(delivery.peer)
    return BatchReport(**counts)


async def _deliver(app: web.Application, delivery: talk.Delivery) -> str:
    db = app[db_key]
    peer = await peer_store.get_peer(db, delivery.peer)
    try:
        if peer is None:
            raise PeerError(f"{node_id_text(delivery.peer)} is not a peer of this node")
        await send_private_message(app[peer_client_key], peer.url, delivery.payload)
    except PeerRefused as refused:
        if not refused.is_transient:
            log.warning("peer refused a private message",
                        extra={"peer": node_id_text(delivery.peer), "error": refused.detail})  # fmt: skip
            await talk.delivery_refused(db, delivery.id)
            return "refused"
        error = refused.detail
    except PeerError as failure:
        error = failure.detail
    else:
        await talk.delivered(db, delivery.id)
        return "delivered"
    next_try = int(app[clock_key]()) + message_retry_delay(delivery.tries)
    await talk.delivery_failed(db, delivery, error, next_try)
    return "failed"


async def message_courier(app: web.Application) -> None:
    """Deliver whatever is due, whenever there may be something."""
    wake = app[message_wakeup_key]
    timeout = 0.0
    while True:
        with suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout)
        wake.clear()
        try:
            while (await deliver_message_batch(app)).attempted == MESSAGE_BATCH:
                pass  # a full batch: there may be more
            timeout = await _until_next_due(app)
        except Exception:  # noqa: BLE001 - e.g. the database is briefly unavailable
            log.exception("message courier failed; trying again")
            timeout = MESSAGE_IDLE_POLL_S


async def _until_next_due(app: web.Application) -> float:
    next_due = await talk.next_delivery_due(app[db_key])
    if next_due is None:
        return MESSAGE_IDLE_POLL_S
    wait = next_due - app[clock_key]()
    return min(MESSAGE_IDLE_POLL_S, max(MESSAGE_MIN_WAIT_S, wait))


async def message_delivery_ctx(app: web.Application):
    """Cleanup context: the message courier runs while the app does."""
    task = asyncio.create_task(message_courier(app))
    yield
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task


def setup_message_delivery(app: web.Application, *, background_tasks: bool = True) -> None:
    """The courier's wake-up event, and the courier unless tests drive each batch."""
    app[message_wakeup_key] = asyncio.Event()
    if background_tasks:
        app.cleanup_ctx.append(message_delivery_ctx)
