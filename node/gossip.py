"""Push gossip: forward every accepted revision to every peer but its source.

How a revision travels from here::

    node.publishing accepts it (own, or from a peer)
      └─ forward_revisions, a revision listener: one executemany puts its id in
         the outbox of every peer but the source and the origin
         (storage.outbox), then wakes the dispatcher
    outbox_dispatcher, one task: when woken, or when a back-off runs out,
      starts a courier for each peer with due work (never two for one peer)
    courier: deliver_outbox_batch again and again until that outbox is empty
      or a delivery fails
    deliver_outbox_batch(app, peer_id): announce the ids of the peer's oldest
      rows, push only the bodies it wants, then delete the rows; on failure
      keep them and back off

Ids first, bodies only to those who lack them: a peer that already holds a
revision costs 32 bytes, and duplicates stop there, which also ends loops.
The outbox is in the database, so nothing accepted is lost by a restart.
Batches: after a wake-up and between two batches to one peer, a courier
waits ``settings.gossip_delay_ms``; every request carries some 600 bytes of
signature headers, so this delay trades latency per hop for bandwidth.

Back-off is per peer: exponential from BACKOFF_BASE_S, capped at
BACKOFF_MAX_S, with jitter so that peers do not retry in step. After
UNAVAILABLE_AFTER_FAILURES failures in a row the peer is *unavailable*: the
circuit is open, and only one probe goes out per back-off period. Any success,
ours or the peer calling us, makes it active again; a peer that was
unavailable also gets an anti-entropy pass at once (node.sync).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass

from aiohttp import web

from node.errors import PeerError, PeerRefused
from node.keys import (
    clock_key,
    db_key,
    outbox_wakeup_key,
    peer_client_key,
    peer_holds_key,
    promised_ids_key,
    reconcile_set_key,
    settings_key,
    sync_trigger_key,
)
from protocol.envelope import SignedAnnonce
from protocol.federation import chunked
from protocol.identity import node_id_text
from protocol.limits import FEDERATION_MAX_ENVELOPES, FEDERATION_MAX_IDS
from storage import annonces as annonce_store
from storage import outbox as outbox_store
from storage import peers as peer_store
from storage.peers import ACTIVE, UNAVAILABLE, Peer

log = logging.getLogger("troc.gossip")

OUTBOX_BATCH_IDS = min(1000, FEDERATION_MAX_IDS)  # ids offered in one announce
OUTBOX_IDLE_POLL_S = 30.0  # look at the outbox at least this often (another process may fill it)
OUTBOX_MIN_WAIT_S = 1.0  # never poll faster than this unless woken
BACKOFF_BASE_S = 2
BACKOFF_MAX_S = 3600
BACKOFF_JITTER = 0.25  # up to this fraction of a delay is taken off at random
UNAVAILABLE_AFTER_FAILURES = 5
CONTACT_REFRESH_S = 60  # a healthy peer's last contact is written at most this often


@dataclass(frozen=True)
class Delivery:
    """What one outbox batch did: rows taken, ids offered, bodies pushed, or why it failed.

    Rows taken but not offered were of ids the peer had announced to us.
    """

    taken: int = 0
    offered: int = 0
    pushed: int = 0
    error: str | None = None


def _now(app: web.Application) -> int:
    return int(app[clock_key]())


def _gossip_delay(app: web.Application) -> float:
    """How long to gather revisions before a batch (settings.gossip_delay_ms)."""
    return app[settings_key].gossip_delay_ms / 1000


def retry_delay(failures: int, rand: Callable[[], float] = random.random) -> int:
    """Seconds to wait after the ``failures``-th failure in a row."""
    delay = min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** min(max(failures, 1) - 1, 30))
    return max(1, round(delay * (1 - BACKOFF_JITTER * rand())))


# --- Peer health ----------------------------------------------------------------


async def note_failure(app: web.Application, peer: Peer, error: PeerError) -> None:
    """A request to the peer failed: count it and back off."""
    failures = peer.failures + 1
    await peer_store.record_failure(
        app[db_key],
        peer.node_id,
        error=error.detail,
        next_try=_now(app) + retry_delay(failures),
        unavailable_after=UNAVAILABLE_AFTER_FAILURES,
    )
    log.warning(
        "peer request failed",
        extra={"peer": node_id_text(peer.node_id), "failures": failures, "error": error.detail},
    )


async def note_success(app: web.Application, peer: Peer) -> None:
    """The peer answered us, or called us: it is reachable."""
    now = _now(app)
    healthy = peer.failures == 0 and peer.state == ACTIVE
    if healthy and peer.last_contact is not None and now - peer.last_contact < CONTACT_REFRESH_S:
        return
    await peer_store.record_contact(app[db_key], peer.node_id, now)
    if peer.failures:
        app[outbox_wakeup_key].set()  # its outbox was waiting for its back-off
    if peer.state == UNAVAILABLE:
        log.info("peer is back", extra={"peer": node_id_text(peer.node_id)})
        app[sync_trigger_key].request(peer.node_id)


# --- Enqueueing -------------------------------------------------------------------


def revision_forwarder(app: web.Application):
    """The revision listener that queues accepted revisions for the peers."""

    async def forward_revisions(accepted: list[SignedAnnonce], source: bytes | None) -> None:
        app[reconcile_set_key].invalidate()
        promised = app[promised_ids_key]
        for signed in accepted:
            promised.discard(signed.id)
        await queue_for_peers(
            app, [(signed.id, signed.annonce.origin) for signed in accepted], source
        )

    return forward_revisions


async def queue_for_peers(
    app: web.Application, revisions: list[tuple[bytes, bytes]], source: bytes | None
) -> None:
    """Queue ``(annonce id, origin)`` for every peer but ``source`` and the origin.

    Also for an annonce the operator shows again: while it was hidden, its
    rows were dropped unsent (storage.outbox).
    """
    await outbox_store.enqueue(app[db_key], revisions, source=source, now=_now(app))
    app[outbox_wakeup_key].set()


# --- Delivering -------------------------------------------------------------------


async def deliver_outbox_batch(app: web.Application, peer_id: bytes) -> Delivery:
    """Offer the peer its oldest waiting ids, push what it wants, and forget them."""
    db = app[db_key]
    peer = await peer_store.get_peer(db, peer_id)
    if peer is None:
        return Delivery()
    ids = await outbox_store.next_batch(db, peer_id, OUTBOX_BATCH_IDS)
    if not ids:
        return Delivery()
    held_there = app[peer_holds_key]
    offer = [annonce_id for annonce_id in ids if peer_id + annonce_id not in held_there]
    if not offer:  # it announced every one of them to us meanwhile
        await outbox_store.remove(db, peer_id, ids)
        return Delivery(taken=len(ids))
    try:
        wanted = await app[peer_client_key].announce(peer.url, offer)
        pushed = await push_bodies(app, peer, wanted)
    except PeerRefused as refused:
        if refused.is_transient:
            return await _failed(app, peer, ids, offer, refused)
        # It is up but says no for good: the same batch would fare no better.
        log.warning("peer refused an announce", extra={"peer": node_id_text(peer_id),
                                                       "error": refused.detail})  # fmt: skip
        await outbox_store.remove(db, peer_id, ids)
        return Delivery(taken=len(ids), offered=len(offer), error=refused.detail)
    except PeerError as error:
        return await _failed(app, peer, ids, offer, error)
    await outbox_store.remove(db, peer_id, ids)
    await note_success(app, peer)
    return Delivery(taken=len(ids), offered=len(offer), pushed=pushed)


async def _failed(
    app: web.Application, peer: Peer, ids: list[bytes], offer: list[bytes], error: PeerError
) -> Delivery:
    """Keep the rows, count the try, and back off."""
    await outbox_store.count_try(app[db_key], peer.node_id, ids)
    await note_failure(app, peer, error)
    return Delivery(taken=len(ids), offered=len(offer), error=error.detail)


async def push_bodies(app: web.Application, peer: Peer, ids: list[bytes]) -> int:
    """Push the envelopes of ``ids`` that are still current here; how many went.

    A batch the peer refuses for good (it finds every item invalid, or one of
    its rules says no) is not retried: it would fare no better. A transient
    refusal or a transport failure raises, and the caller retries later.
    """
    if not ids:
        return 0
    held = await annonce_store.envelopes_by_id(app[db_key], ids)
    envelopes = [held[annonce_id] for annonce_id in ids if annonce_id in held]
    pushed = 0
    for batch in chunked(envelopes, FEDERATION_MAX_ENVELOPES):
        try:
            outcome = await app[peer_client_key].push(peer.url, list(batch))
        except PeerRefused as refused:
            if refused.is_transient:
                raise
            log.warning(
                "peer refused a batch",
                extra={"peer": node_id_text(peer.node_id), "error": refused.detail},
            )
            continue
        pushed += len(batch) - len(outcome.refused)
    return pushed


async def _courier(app: web.Application, peer_id: bytes) -> None:
    try:
        while True:
            delivery = await deliver_outbox_batch(app, peer_id)
            if delivery.error or not delivery.taken:
                return
            await asyncio.sleep(_gossip_delay(app))
    except Exception:  # noqa: BLE001 - a courier's fault must not stop the others
        log.exception("outbox courier failed", extra={"peer": node_id_text(peer_id)})


async def outbox_dispatcher(app: web.Application) -> None:
    """Start a courier for every peer with due work, whenever there may be some."""
    wake = app[outbox_wakeup_key]
    couriers: dict[bytes, asyncio.Task] = {}
    again: set[bytes] = set()

    def courier_done(peer_id: bytes) -> None:
        if peer_id in again:  # work came while it was finishing
            again.discard(peer_id)
            wake.set()

    timeout = 0.0
    try:
        while True:
            with suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout)
            wake.clear()
            await asyncio.sleep(_gossip_delay(app))
            try:
                now, later = _now(app), []
                for peer_id, next_try in await outbox_store.waiting_peers(app[db_key]):
                    if next_try is not None and next_try > now:
                        later.append(next_try - now)
                        continue
                    running = couriers.get(peer_id)
                    if running is not None and not running.done():
                        again.add(peer_id)
                        continue
                    task = asyncio.create_task(_courier(app, peer_id))
                    task.add_done_callback(lambda _, p=peer_id: courier_done(p))
                    couriers[peer_id] = task
                timeout = min([OUTBOX_IDLE_POLL_S, *later])
                timeout = max(OUTBOX_MIN_WAIT_S, timeout)
            except Exception:  # noqa: BLE001 - e.g. the database is briefly unavailable
                log.exception("outbox dispatcher failed; trying again")
                timeout = OUTBOX_IDLE_POLL_S
    finally:
        for task in couriers.values():
            task.cancel()
        await asyncio.gather(*couriers.values(), return_exceptions=True)


async def gossip_ctx(app: web.Application):
    """Cleanup context: the outbox dispatcher runs while the app does."""
    task = asyncio.create_task(outbox_dispatcher(app))
    yield
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task
