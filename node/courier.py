"""One courier per destination node, for everything this node sends it.

How an item travels from here::

    a feature's unit of work queues it (storage.outbox) in the transaction
    that makes the decision: a revision with its items for the peers, a
    message with its delivery, a forwarded report with its own
      └─ once committed, the change signal (topic OUTBOX) wakes the dispatcher
    dispatcher, one task: whenever woken, or when a back-off runs out, starts
      a courier for each destination with due work (never two for one node)
    courier: deliver_round again and again until that destination's queue is
      empty or a delivery fails, waiting ``settings.gossip_delay_ms`` between
      two rounds (every request carries some 600 bytes of signature headers:
      the wait trades latency for bandwidth), or ``stream_delay_ms`` when
      annonces go to that destination on a stream (node.streams: a frame
      costs a few bytes)
    deliver_round(app, node_id): each kind in turn (messages, reports,
      annonces, then directory records) sends what waits for the destination, through the one client
      that signs and sends (node.peer_client); then one unit of work removes
      what went, applies its effects (a message is marked delivered, a report
      forwarded) and records how the destination answered

Kinds: an ``ItemKind`` says how its items go (``deliver``) and what their
going changes here (``settle``); node.gossip, node.conversations and
node.reports each register theirs (``register_kinds``). A kind's ``deliver``
stops at the first failure that is not the item's own fault; an item the
destination refuses for good (a 4xx but 401, 403, 408, 429) is settled as
refused and never sent again.

Back-off, one policy for every kind, per destination (a node that is down
fails every item alike): exponential from BACKOFF_BASE_S, capped at
BACKOFF_MAX_S, with jitter so that nodes do not retry in step. After
UNAVAILABLE_AFTER_FAILURES failures in a row the destination is
*unavailable* (its circuit is open): only one round goes out per back-off
period. Any success, ours or the node calling us (``heard_from``), makes it
active again; a peer that was unavailable also gets an anti-entropy pass at
once (node.sync). So that a healed link does not wait for the rest of a long
back-off, the dispatcher probes every destination in back-off each
PROBE_INTERVAL_S with one cheap signed request (its node document): an
answer ends the back-off.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Protocol

from aiohttp import web

from node.clock import now, now_precise, wait_until_set
from node.errors import PeerError, PeerRefused, PeerUnreachable
from node.federation_state import CourierState
from node.metrics import note_delivery_failure
from node.workers import add_background
from node.keys import (
    courier_key,
    db_key,
    peer_client_key,
    settings_key,
    sync_trigger_key,
)
from protocol.identity import node_id_text
from storage import outbox as outbox_store
from storage.db import Connection
from storage.outbox import Destination
from storage.peers import ACTIVE, UNAVAILABLE

log = logging.getLogger("troc.courier")

BACKOFF_BASE_S = 2
BACKOFF_MAX_S = 3600
BACKOFF_JITTER = 0.25  # up to this fraction of a delay is taken off at random
UNAVAILABLE_AFTER_FAILURES = 5
# A destination in back-off is probed this often, whatever is left of its
# back-off: one cheap signed request, so that a healed link is used within a
# minute even after hours of back-off.
PROBE_INTERVAL_S = 30.0
IDLE_POLL_S = 30.0  # look at the queue at least this often (another process may fill it)
MIN_WAIT_S = 1.0  # never poll faster than this unless woken
CONTACT_REFRESH_S = 60  # a healthy destination's last contact is written at most this often


def retry_delay(failures: int, rand: Callable[[], float] = random.random) -> int:
    """Seconds to wait after the ``failures``-th failure in a row."""
    delay = min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** min(max(failures, 1) - 1, 30))
    return max(1, round(delay * (1 - BACKOFF_JITTER * rand())))


@dataclass(frozen=True)
class Outcome:
    """What one kind's delivery did with the items of one destination, by item key."""

    delivered: tuple[bytes, ...] = ()  # the destination has them: forgotten here
    refused: tuple[bytes, ...] = ()  # refused for good: forgotten, their writers told
    failed: tuple[bytes, ...] = ()  # tried and failed: kept, one more try counted
    error: PeerError | None = None  # why delivery stopped: the destination backs off
    answers: dict[bytes, object] = field(default_factory=dict)  # what it said of each
    detail: object = None  # the kind's own account of the round


class ItemKind(Protocol):
    """How one kind of item goes to a destination, and what its going changes here."""

    name: str

    async def deliver(self, app: web.Application, destination: Destination) -> Outcome | None:
        """Send what waits for ``destination``; None when nothing of this kind does."""

    def settle(self, conn: Connection, outcome: Outcome, now: int) -> None:
        """What the delivered and refused items change here, in the unit that forgets them."""


@dataclass(frozen=True)
class Round:
    """One round of deliveries to one destination: each kind's outcome, and the failure."""

    destination: bytes
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    error: str | None = None
    url: str | None = None  # where it went

    def of(self, kind: str) -> Outcome | None:
        return self.outcomes.get(kind)


def register_kinds(app: web.Application, *kinds: ItemKind) -> None:
    app[courier_key].kinds.extend(kinds)


# --- Delivering ------------------------------------------------------------------


async def send_each(
    app: web.Application, destination: Destination, kind: str,
    send: Callable[[str, bytes], Awaitable[object]], limit: int,
) -> Outcome | None:  # fmt: skip
    """Send the destination its oldest items of ``kind``, one request each, in order.

    For the kinds whose items are exact request bodies (messages, reports):
    ``send(url, body)`` makes one request and returns what the destination
    answered. An item refused for good is settled as refused; any other
    failure stops the round there, so the later items wait behind it.
    """
    items = await app[db_key].read(outbox_store.next_items, destination.node_id, kind, limit)
    if not items:
        return None
    delivered: list[bytes] = []
    refused: list[bytes] = []
    answers: dict[bytes, object] = {}
    for item in items:
        key = item.item_key
        try:
            if destination.url is None:
                raise PeerUnreachable(f"{node_id_text(destination.node_id)} is not a peer of this node")
            answers[key] = await send(destination.url, item.body)
        except PeerRefused as refusal:
            if refusal.is_transient:
                return Outcome(tuple(delivered), tuple(refused), (key,), refusal, answers)
            log.warning("peer refused an item for good", extra={
                "kind": kind, "peer": node_id_text(destination.node_id), "error": refusal.detail})
            refused.append(key)
            answers[key] = refusal
            continue
        except PeerError as error:
            return Outcome(tuple(delivered), tuple(refused), (key,), error, answers)
        delivered.append(key)
    return Outcome(tuple(delivered), tuple(refused), answers=answers)


async def deliver_round(app: web.Application, node_id: bytes) -> Round:
    """Send the destination what waits for it, kind by kind, and settle what went."""
    db = app[db_key]
    destination, waiting = await db.read(_round_start, node_id)
    resolve = app[courier_key].resolve
    if destination.url is None and resolve is not None:
        destination = await resolve(app, destination)
    outcomes: dict[str, Outcome] = {}
    held_back: PeerError | None = None  # a kind the destination asked us to slow down for
    for kind in app[courier_key].kinds:
        if kind.name not in waiting:  # one query for all, not one per kind
            continue
        outcome = await kind.deliver(app, destination)
        if outcome is None:
            continue
        outcomes[kind.name] = outcome
        slowed = _slow_down(outcome.error)
        await db.write(_settle, kind, destination, outcome, now(app),
                       retry_delay(destination.failures + 1), slowed)  # fmt: skip
        if outcome.error is not None and not slowed:
            _log_failure(destination, outcome.error)
            note_delivery_failure(app)
            return Round(node_id, outcomes, outcome.error.detail, destination.url)
        if slowed:  # that kind waits; the others still go (annonces behind messages, say)
            held_back = outcome.error
        if destination.state == UNAVAILABLE:
            _back(app, node_id)
        destination = Destination(node_id, destination.url, ACTIVE, 0, None, None, now(app))
    if held_back is not None:
        log.info("destination asked to slow down",
                 extra={"peer": node_id_text(node_id), "error": held_back.detail})  # fmt: skip
        await db.write(outbox_store.hold_back, node_id, reason=held_back.detail,
                       next_try=now(app) + retry_delay(1), now=now(app))  # fmt: skip
        return Round(node_id, outcomes, held_back.detail, destination.url)
    return Round(node_id, outcomes, url=destination.url)


def _round_start(conn: Connection, node_id: bytes) -> tuple[Destination, frozenset[str]]:
    return outbox_store.get_destination(conn, node_id), outbox_store.waiting_kinds(conn, node_id)


def _slow_down(error: PeerError | None) -> bool:
    """Whether a failure is the destination's "too many requests": it answered, it is up."""
    return isinstance(error, PeerRefused) and error.status == 429


def _settle(
    conn: Connection, kind: ItemKind, destination: Destination, outcome: Outcome,
    at: int, delay: int, slowed: bool = False,
) -> None:  # fmt: skip
    node_id = destination.node_id
    kind.settle(conn, outcome, at)
    outbox_store.remove(conn, node_id, kind.name, [*outcome.delivered, *outcome.refused])
    outbox_store.count_try(conn, node_id, kind.name, outcome.failed)
    if slowed:
        outbox_store.record_contact(conn, node_id, at)  # the round goes on; held back at its end
    elif outcome.error is not None:
        outbox_store.record_failure(conn, node_id, error=outcome.error.detail, next_try=at + delay,
                                    unavailable_after=UNAVAILABLE_AFTER_FAILURES)  # fmt: skip
    elif _contact_worth_writing(destination, at):
        outbox_store.record_contact(conn, node_id, at)


def _contact_worth_writing(destination: Destination, at: int) -> bool:
    if destination.failures or destination.state != ACTIVE or destination.last_contact is None:
        return True
    return at - destination.last_contact >= CONTACT_REFRESH_S


def _log_failure(destination: Destination, error: PeerError) -> None:
    log.warning("delivery failed", extra={
        "peer": node_id_text(destination.node_id), "failures": destination.failures + 1,
        "error": error.detail,
    })  # fmt: skip


def _back(app: web.Application, node_id: bytes) -> None:
    log.info("peer is back", extra={"peer": node_id_text(node_id)})
    app[sync_trigger_key].request(node_id)


async def attempt_now(app: web.Application, node_id: bytes) -> Round:
    """One round to ``node_id`` at once, whatever its back-off (an operator is waiting)."""
    async with app[courier_key].lock(node_id):
        return await deliver_round(app, node_id)


async def deliver_due(app: web.Application) -> dict[bytes, Round]:
    """One round to each destination whose back-off has run out (what the dispatcher does)."""
    due = await app[db_key].read(outbox_store.due_destinations, now(app))
    return {node_id: await attempt_now(app, node_id) for node_id in due}


# --- Health, whoever learnt it ----------------------------------------------------


async def record_failure(app: web.Application, node_id: bytes, error: PeerError) -> None:
    """A request to ``node_id`` failed outside a round (anti-entropy): back off the same way."""
    db = app[db_key]
    destination = await db.read(outbox_store.get_destination, node_id)
    await db.write(outbox_store.record_failure, node_id, error=error.detail,
                   next_try=now(app) + retry_delay(destination.failures + 1),
                   unavailable_after=UNAVAILABLE_AFTER_FAILURES)  # fmt: skip
    _log_failure(destination, error)


async def record_success(app: web.Application, node_id: bytes) -> None:
    """A request to ``node_id``, or from it, succeeded: it is reachable."""
    db = app[db_key]
    destination = await db.read(outbox_store.get_destination, node_id)
    if not _contact_worth_writing(destination, now(app)):
        return
    await db.write(outbox_store.record_contact, node_id, now(app))
    if destination.state == UNAVAILABLE:
        _back(app, node_id)


def heard_from(app: web.Application, node_id: bytes) -> None:
    """A node called us and was answered: the dispatcher records the contact, off the request."""
    courier = app[courier_key]
    courier.heard.add(node_id)
    courier.wakeup.set()


# --- Running -----------------------------------------------------------------------


def _wake_delay(app: web.Application) -> float:
    """How long the dispatcher gathers after a wake-up: the shorter delay of the two."""
    settings = app[settings_key]
    if settings.streams == "on":
        return min(settings.gossip_delay_ms, settings.stream_delay_ms) / 1000
    return settings.gossip_delay_ms / 1000


def _delay(app: web.Application, url: str | None) -> float:
    """How long the courier gathers before a round to this destination."""
    settings, client = app[settings_key], app.get(peer_client_key)
    if url is not None and client is not None and client.streaming(url):
        return settings.stream_delay_ms / 1000
    return settings.gossip_delay_ms / 1000


async def _courier(app: web.Application, node_id: bytes) -> None:
    try:
        url = (await app[db_key].read(outbox_store.get_destination, node_id)).url
        if (longer := _delay(app, url) - _wake_delay(app)) > 0:  # no stream: a batch's wait
            await asyncio.sleep(longer)
        while True:
            async with app[courier_key].lock(node_id):
                done = await deliver_round(app, node_id)
            if done.error or not done.outcomes:
                return
            await asyncio.sleep(_delay(app, done.url))
    except Exception:  # noqa: BLE001 - a courier's fault must not stop the others
        log.exception("courier failed", extra={"peer": node_id_text(node_id)})


async def probe_backoffs(app: web.Application, last_probe: dict[bytes, float]) -> int:
    """Probe each destination in back-off not probed for PROBE_INTERVAL_S; how many answered."""
    at = now_precise(app)
    answered = 0
    try:
        waiting = await app[db_key].read(outbox_store.in_backoff, now(app))
    except Exception:  # noqa: BLE001 - e.g. the database is briefly unavailable
        log.exception("probing destinations in back-off failed")
        return 0
    for destination in waiting:
        node_id = destination.node_id
        if destination.url is None or at - last_probe.get(node_id, 0.0) < PROBE_INTERVAL_S:
            continue
        last_probe[node_id] = at
        try:
            await app[peer_client_key].node_document(destination.url, node_id)
        except PeerError:
            continue  # still down: its back-off stands
        answered += 1
        await record_success(app, node_id)
    return answered


async def _record_heard(app: web.Application) -> None:
    courier = app[courier_key]
    heard, courier.heard = courier.heard, set()
    for node_id in heard:
        await record_success(app, node_id)


async def dispatcher(app: web.Application) -> None:
    """Start a courier for every destination with due work, whenever there may be some."""
    courier = app[courier_key]
    running: dict[bytes, asyncio.Task] = {}
    again: set[bytes] = set()

    def courier_done(node_id: bytes) -> None:
        if node_id in again:  # work came while it was finishing
            again.discard(node_id)
            courier.wakeup.set()

    timeout = 0.0
    probed: dict[bytes, float] = {}
    probing: asyncio.Task | None = None
    try:
        while True:
            await wait_until_set(courier.wakeup, timeout)
            courier.wakeup.clear()
            await asyncio.sleep(_wake_delay(app))
            try:
                await _record_heard(app)
                if probing is None or probing.done():  # never waits for a slow probe
                    probing = asyncio.create_task(probe_backoffs(app, probed))
                at, later = now(app), []
                for node_id, next_try in await app[db_key].read(outbox_store.waiting_destinations):
                    if next_try is not None and next_try > at:
                        later.append(next_try - at)
                        continue
                    task = running.get(node_id)
                    if task is not None and not task.done():
                        again.add(node_id)
                        continue
                    task = asyncio.create_task(_courier(app, node_id))
                    task.add_done_callback(lambda _, n=node_id: courier_done(n))
                    running[node_id] = task
                timeout = max(MIN_WAIT_S, min([IDLE_POLL_S, PROBE_INTERVAL_S, *later]))
            except Exception:  # noqa: BLE001 - e.g. the database is briefly unavailable
                log.exception("courier dispatcher failed; trying again")
                timeout = IDLE_POLL_S
    finally:
        tasks = [*running.values(), *([probing] if probing is not None else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def setup_courier(app: web.Application, *, background_tasks: bool = True) -> None:
    app[courier_key] = CourierState()
    app.cleanup_ctx.append(courier_signal_ctx)
    if background_tasks:
        add_background(app, courier_ctx)


async def courier_signal_ctx(app: web.Application):
    """Cleanup context: the change signal wakes the courier while the app runs."""
    listener = app[courier_key].changed
    app[db_key].on_change(listener)
    yield
    app[db_key].remove_listener(listener)


async def courier_ctx(app: web.Application):
    """Cleanup context: the dispatcher runs while the app does."""
    task = asyncio.create_task(dispatcher(app))
    yield
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task
