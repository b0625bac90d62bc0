"""Anti-entropy: reconcile sets with peers, then exchange what differs.

``reconcile_with_peer(app, peer)`` is one pass with one peer. It drives the
initiator's state machine (``protocol.reconcile.Reconciler``) over HTTP, one
``POST /federation/v1/reconcile`` per round; the peer answers each round
statelessly. Once the sets are compared, the revisions we lack are fetched
and go through ``node.annonces.receive`` (so they are stored, and forwarded
to our other peers like any revision), and the ones the peer lacks are
offered and the wanted ones pushed (``node.gossip.offer_bodies``).

The reconciled set is every current revision, live or tombstone, as
``(updated, id)`` (``storage.annonces.reconcile_items``, cached by
``node.federation_state.ReconcileSet``). Superseded revisions are not in it:
two converged nodes hold equal sets, and a pass between them transfers one
round of fingerprints and nothing else.

Hidden annonces stay in the set, so a peer that holds them sees no
difference, but their bodies are neither served (fetch) nor pushed
(``storage.annonces.FORWARDABLE``). A peer that lacks one sees the
difference at each pass; what it asked of us and we did not serve, it does
not ask of us again for ``UNSERVED_IDS_TTL_S`` (``unserved_ids_key``), so
the difference costs reconciliation rounds only, never a fetch per pass.

When: ``sync_loop`` runs a pass with every peer on start, whatever their
back-off (a node coming back catches up at once); then every
``settings.sync_interval_s`` (with jitter) with the peers whose back-off has
run out; and at once with a peer that comes back or is added
(``SyncTrigger``). ``standby_loop``, in every worker, fetches each
announced id whose promised push did not come from a peer that offered it
too (``node.federation_state.Promises``). ``purge_loop``, a task of its own, deletes expired
revisions every ``settings.purge_interval_s`` (nothing else deletes them:
the reconciled set leaves them out until then).
"""

from __future__ import annotations

import asyncio
import logging
import random
from contextlib import suppress
from dataclasses import dataclass

from aiohttp import web

from node import annonces, directory, privacy
from node.clock import now
from node.courier import record_failure, record_success
from node.errors import PeerBadAnswer, PeerError
from node.federation_state import FROM_THE_FUTURE, envelope_id, not_worth_asking_again
from node.gossip import offer_bodies
from node.metrics import note_sync
from node.keys import (
    db_key,
    directory_synced_key,
    ignored_ids_key,
    node_key_key,
    peer_client_key,
    promised_ids_key,
    reconcile_set_key,
    settings_key,
    sync_trigger_key,
    unserved_ids_key,
)
from protocol.errors import ProtocolError
from protocol.federation import chunked
from protocol.identity import node_id_text
from protocol.limits import FEDERATION_MAX_ENVELOPES
from protocol.reconcile import Reconciler
from storage import annonces as annonce_store
from storage import directory as directory_store
from storage import outbox as outbox_store
from storage import peers as peer_store
from storage import replays
from storage.db import Connection
from storage.peers import Peer

log = logging.getLogger("troc.sync")

SYNC_JITTER = 0.1  # each interval is drawn within this fraction of the setting
# The first pass waits this long after start-up: our own site is listening by
# then, for the peers that call back at once.
SYNC_START_DELAY_S = 0.5
# How often promises that ran out unkept are looked for (``fetch_lapsed``).
STANDBY_CHECK_S = 1.0


@dataclass(frozen=True)
class SyncReport:
    """One pass with one peer: round trips, revisions received and sent, or the error."""

    peer_id: bytes
    rounds: int = 0
    received: int = 0
    sent: int = 0
    error: str | None = None

    def as_dict(self) -> dict:
        return {
            "node_id": node_id_text(self.peer_id),
            "rounds": self.rounds,
            "received": self.received,
            "sent": self.sent,
            "error": self.error,
        }


async def reconcile_with_peer(app: web.Application, peer: Peer) -> SyncReport:
    """One anti-entropy pass with ``peer``; failures are recorded and reported, not raised."""
    try:
        rounds, have, need = await _compare_sets(app, peer)
        received = await fetch_missing(app, peer, need)
        sent = await offer_bodies(app, peer.url, peer.node_id, have)
    except PeerError as error:
        await record_failure(app, peer.node_id, error)
        note_sync(app, ok=False)
        return SyncReport(peer.node_id, error=error.detail)
    await record_success(app, peer.node_id)
    note_sync(app, ok=True, received=received, sent=sent)
    await compare_directories(app, peer)  # part of the pass: done before it is recorded
    await app[db_key].write(peer_store.record_sync, peer.node_id, now(app))
    log.info(
        "sync done",
        extra={"peer": node_id_text(peer.node_id), "rounds": rounds,
               "received": received, "sent": sent},
    )  # fmt: skip
    return SyncReport(peer.node_id, rounds, received, sent)


async def compare_directories(app: web.Application, peer: Peer, *, force: bool = False) -> int:
    """The directory's digest compared with the peer's, at most once an hour, or at the pass
    after the peer brought annonces of a node without a document here (``undocumented``:
    a record pushed may have been lost, or refused for want of another); records taken.

    A failure is logged and left for the next pass: the annonces went already.
    """
    synced = app[directory_synced_key]
    at = now(app)
    last = synced.get(peer.node_id)
    if not force and last is not None and at - last < directory.DIRECTORY_SYNC_INTERVAL_S:
        return 0
    try:
        taken = await directory.sync_with_peer(app, peer.url, peer.node_id)
    except PeerError as error:
        log.info("directory not compared", extra={"peer": node_id_text(peer.node_id),
                                                   "error": error.detail})  # fmt: skip
        return 0
    synced[peer.node_id] = at
    return taken


async def _compare_sets(
    app: web.Application, peer: Peer
) -> tuple[int, list[bytes], list[bytes]]:
    """Run the reconciliation; (rounds, ids the peer lacks, ids we lack)."""
    items = await app[reconcile_set_key].get(app[db_key], now(app))
    reconciler = Reconciler(items)
    message: bytes | None = reconciler.initiate()
    have: list[bytes] = []
    need: list[bytes] = []
    client = app[peer_client_key]
    while message is not None:
        reply = await client.reconcile(peer.url, message)
        try:
            step = reconciler.reconcile(reply)
        except ProtocolError as exc:  # a reply out of protocol, or no agreement in time
            raise PeerBadAnswer(f"{peer.url}: reconciliation failed ({exc.detail})") from None
        have.extend(step.have_ids)
        need.extend(step.need_ids)
        message = step.next_message
    return reconciler.rounds, have, need


async def fetch_missing(app: web.Application, peer: Peer, ids: list[bytes]) -> int:
    """Fetch the revisions ``ids`` from the peer and receive them; how many were new.

    Each batch takes only ids no other peer is pushing or being fetched from
    (``Promises.fetching``, claimed just before the batch goes): passes with
    several peers at once share the work instead of each bringing it all,
    and an id left to another is fetched from this peer if that one fails.
    """
    ignored, unserved = app[ignored_ids_key], app[unserved_ids_key]
    db, promised = app[db_key], app[promised_ids_key]
    pending = [
        annonce_id for annonce_id in ids
        if annonce_id not in ignored and peer.node_id + annonce_id not in unserved
    ]  # fmt: skip
    accepted = 0
    for window in chunked(pending, FEDERATION_MAX_ENVELOPES):
        held = await db.read(annonce_store.known_ids, window)  # brought meanwhile by another
        for annonce_id in held:
            promised.kept(annonce_id)
        chunk = [key for key in window
                 if key not in held and promised.fetching(key, peer.node_id)]  # fmt: skip
        if not chunk:
            continue
        try:
            fetched = _only_asked(await app[peer_client_key].fetch(peer.url, chunk), chunk)
            _note_unserved(unserved, peer.node_id, chunk, fetched)
            report = await annonces.receive(app, fetched, source=peer.node_id)
        finally:  # what it did not bring, a peer standing by may
            promised.fetched(chunk, peer.node_id)
        accepted += len(report.accepted)
        not_worth_asking_again(
            ignored, fetched,
            kept={signed.id for signed in report.accepted},
            future={r.index for r in report.refused if r.code == FROM_THE_FUTURE},
        )  # fmt: skip
    return accepted


async def fetch_lapsed(app: web.Application) -> int:
    """Fetch each id whose promised push did not come, from the peer standing by for it."""
    handed = app[promised_ids_key].lapsed()
    counts = await asyncio.gather(
        *(_fetch_standing_by(app, peer_id, ids) for peer_id, ids in handed.items()))
    return sum(counts)


async def _fetch_standing_by(app: web.Application, peer_id: bytes, ids: list[bytes]) -> int:
    peer = await app[db_key].read(peer_store.get_peer, peer_id)
    if peer is None:  # removed meanwhile
        return 0
    try:
        return await fetch_missing(app, peer, ids)
    except PeerError as error:  # the next standby, or anti-entropy, brings them
        log.info("fetch of lapsed promises failed",
                 extra={"peer": node_id_text(peer_id), "error": error.detail})  # fmt: skip
        return 0


async def standby_loop(app: web.Application) -> None:
    while True:
        await asyncio.sleep(STANDBY_CHECK_S)
        try:
            await fetch_lapsed(app)
        except Exception:  # noqa: BLE001 - e.g. the database is briefly unavailable
            log.exception("fetch of lapsed promises failed")


async def standby_ctx(app: web.Application):
    """Cleanup context: in every worker (each answers announces), lapsed promises are fetched."""
    task = asyncio.create_task(standby_loop(app))
    yield
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task


def _note_unserved(unserved, peer_id: bytes, asked, fetched: list[bytes]) -> None:
    """Remember the ids the peer left out of its answer (it hides them, or lost them)."""
    served = {envelope_id(envelope) for envelope in fetched}
    for annonce_id in asked:
        if annonce_id not in served:
            unserved.add(peer_id + annonce_id)


def _only_asked(envelopes: list[bytes], asked) -> list[bytes]:
    """The envelopes we asked for, once each; a peer cannot slip in others."""
    asked = set(asked)
    found: dict[bytes, bytes] = {}
    for envelope in envelopes:
        key = envelope_id(envelope)
        if key in asked:
            found[key] = envelope
    return list(found.values())


async def sync_with_peers(app: web.Application, peers: list[Peer]) -> list[SyncReport]:
    """A pass with each of ``peers``, all at once."""
    return list(await asyncio.gather(*(reconcile_with_peer(app, peer) for peer in peers)))


def _interval(app: web.Application) -> float:
    base = app[settings_key].sync_interval_s
    return base * random.uniform(1 - SYNC_JITTER, 1 + SYNC_JITTER)


async def sync_loop(app: web.Application) -> None:
    """Start the passes that are due, each on its own: a dead peer delays no other pass."""
    trigger = app[sync_trigger_key]
    await asyncio.sleep(SYNC_START_DELAY_S)
    trigger.request()  # on start: every peer at once
    loop = asyncio.get_running_loop()
    next_periodic = loop.time() + _interval(app)
    running: dict[bytes, asyncio.Task] = {}
    try:
        await _sync_rounds(app, trigger, loop, next_periodic, running)
    finally:
        for task in running.values():
            task.cancel()
        await asyncio.gather(*running.values(), return_exceptions=True)


async def _sync_rounds(app, trigger, loop, next_periodic: float,
                       running: dict[bytes, asyncio.Task]) -> None:  # fmt: skip
    while True:
        everyone, asked = await trigger.wait(max(0.0, next_periodic - loop.time()))
        periodic = loop.time() >= next_periodic
        if periodic:
            next_periodic = loop.time() + _interval(app)
        try:
            peers = await app[db_key].read(peer_store.list_peers)
            at = now(app)
            chosen = [
                peer for peer in peers
                if everyone or peer.node_id in asked
                or (periodic and (peer.next_try is None or peer.next_try <= at))
            ]  # fmt: skip
            for peer in chosen:
                task = running.get(peer.node_id)
                if task is not None and not task.done():
                    continue  # its pass is still on: the next request finds it done
                running[peer.node_id] = asyncio.create_task(_pass(app, peer))
        except Exception:  # noqa: BLE001 - e.g. the database is briefly unavailable
            log.exception("anti-entropy pass failed")


async def _pass(app: web.Application, peer: Peer) -> None:
    try:
        await reconcile_with_peer(app, peer)
    except Exception:  # noqa: BLE001 - one pass's fault must not stop the loop
        log.exception("anti-entropy pass failed", extra={"peer": node_id_text(peer.node_id)})


def _purge(conn: Connection, own: bytes, at: int) -> int:
    purged = annonce_store.purge_expired(conn, at)
    outbox_store.drop_dead(conn)
    replays.forget_expired(conn, at)
    directory.forget_idle(conn, own, at)
    privacy.forget_expired(conn, at)  # what residents' data the privacy page says goes
    return purged


async def purge_once(app: web.Application) -> int:
    """Delete expired revisions, the outbox items left without an annonce, and the residents'
    data kept no longer (node/privacy.py)."""
    purged = await app[db_key].write(_purge, app[node_key_key].node_id, now(app))
    if purged:
        log.info("expired annonces purged", extra={"count": purged})
    return purged


async def purge_loop(app: web.Application) -> None:
    while True:
        try:
            await purge_once(app)
        except Exception:  # noqa: BLE001 - try again next time
            log.exception("purge failed")
        await asyncio.sleep(app[settings_key].purge_interval_s)


def undocumented(app: web.Application):
    """A change listener: a peer that brought annonces of a node without a document here
    has its directory compared at the next pass (every peer, when a notice from another
    worker came without its keys)."""
    synced = app[directory_synced_key]

    def changed(changes) -> None:
        if directory_store.UNDOCUMENTED not in changes:
            return
        peers = changes.keys(directory_store.UNDOCUMENTED)
        for peer_id in peers if peers else list(synced):
            synced.pop(peer_id, None)

    return changed


async def undocumented_ctx(app: web.Application):
    """Cleanup context, in every worker (the leader's passes read what it marks)."""
    listener = undocumented(app)
    app[db_key].on_change(listener)
    yield
    app[db_key].remove_listener(listener)


async def sync_ctx(app: web.Application):
    """Cleanup context: anti-entropy and the purge run while the app does."""
    tasks = [asyncio.create_task(sync_loop(app)), asyncio.create_task(purge_loop(app))]
    yield
    for task in tasks:
        task.cancel()
    for task in tasks:
        with suppress(asyncio.CancelledError):
            await task
