"""Push gossip: every accepted revision is offered to every peer but its source.

How a revision travels from here::

    node.annonces stores it (own, or from a peer) and, in the same unit of
      work, queue_revisions puts its id in the outbox of every peer but the
      source and the origin (storage.outbox, kind ``annonce``)
    the courier (node.courier) takes each peer's oldest items: ANNONCES, the
      kind registered here, announces their ids, pushes only the bodies the
      peer wants, and the items are forgotten once the peer has answered

Ids first, bodies only to those who lack them: a peer that already holds a
revision costs 32 bytes, and duplicates stop there, which also ends loops.
An id the peer announced to us is not offered back (``peer_holds_key``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiohttp import web

from node.courier import Outcome
from node.errors import PeerError, PeerRefused, PeerUnreachable
from node.keys import db_key, peer_client_key, peer_holds_key
from protocol.envelope import SignedAnnonce
from protocol.federation import chunked
from protocol.identity import node_id_text
from protocol.limits import FEDERATION_MAX_ENVELOPES, FEDERATION_MAX_IDS
from storage import annonces as annonce_store
from storage import outbox as outbox_store
from storage.db import Connection
from storage.outbox import ANNONCE, Destination

log = logging.getLogger("troc.gossip")

OUTBOX_BATCH_IDS = min(1000, FEDERATION_MAX_IDS)  # ids offered in one announce


@dataclass(frozen=True)
class Delivery:
    """What one round of annonces did: items taken, ids offered, bodies pushed, or why it failed.

    Items taken but not offered were of ids the peer had announced to us.
    """

    taken: int = 0
    offered: int = 0
    pushed: int = 0
    error: str | None = None


def queue_revisions(
    conn: Connection, accepted: list[SignedAnnonce], source: bytes | None, now: int
) -> None:
    """In the unit that stored them: offer these revisions to every peer but ``source``."""
    revisions = [(signed.id, signed.annonce.origin) for signed in accepted]
    outbox_store.enqueue_annonces(conn, revisions, source=source, now=now)


class AnnonceKind:
    """The courier's kind for annonces: announce ids, then push the wanted bodies."""

    name = ANNONCE

    async def deliver(self, app: web.Application, destination: Destination) -> Outcome | None:
        peer_id = destination.node_id
        # A read: the dead items (no longer current here) go with the round's settling.
        ids, dead = await app[db_key].read(outbox_store.peek_annonces, peer_id, OUTBOX_BATCH_IDS)
        if not ids and not dead:
            return None
        held_there = app[peer_holds_key]
        offer = [annonce_id for annonce_id in ids if peer_id + annonce_id not in held_there]
        if not offer:  # it announced every one of them to us meanwhile (or all were dead)
            return Outcome(delivered=(*ids, *dead), detail=Delivery(taken=len(ids)))
        try:
            if destination.url is None:
                raise PeerUnreachable(f"{node_id_text(peer_id)} is no longer a peer")
            wanted = await app[peer_client_key].announce(destination.url, offer)
            pushed = await push_bodies(app, destination.url, peer_id, wanted)
        except PeerRefused as refused:
            if refused.is_transient:
                return _failed(ids, dead, offer, refused)
            # It is up but says no for good: the same batch would fare no better.
            log.warning("peer refused an announce", extra={"peer": node_id_text(peer_id),
                                                           "error": refused.detail})  # fmt: skip
            return Outcome(delivered=tuple(dead), refused=tuple(ids),
                           detail=Delivery(len(ids), len(offer), error=refused.detail))  # fmt: skip
        except PeerError as error:
            return _failed(ids, dead, offer, error)
        return Outcome(delivered=(*ids, *dead), detail=Delivery(len(ids), len(offer), pushed))

    def settle(self, conn: Connection, outcome: Outcome, now: int) -> None:
        """Nothing here changes when a peer has been offered an annonce."""


def _failed(ids: list[bytes], dead: list[bytes], offer: list[bytes], error: PeerError) -> Outcome:
    return Outcome(delivered=tuple(dead), failed=tuple(ids), error=error,
                   detail=Delivery(len(ids), len(offer), error=error.detail))  # fmt: skip


async def push_bodies(app: web.Application, url: str, peer_id: bytes, ids: list[bytes]) -> int:
    """Push the envelopes of ``ids`` that are still current here; how many went.

    A batch the peer refuses for good (it finds every item invalid, or one of
    its rules says no) is not retried: it would fare no better. A transient
    refusal or a transport failure raises, and the caller retries later.
    """
    if not ids:
        return 0
    held = await app[db_key].read(annonce_store.envelopes_by_id, ids)
    return await _push_envelopes(app, url, peer_id, [held[key] for key in ids if key in held])


async def offer_bodies(app: web.Application, url: str, peer_id: bytes, ids: list[bytes]) -> int:
    """Offer ``ids`` that are still current here and forwarded, push what the peer wants;
    how many went.

    What an anti-entropy pass found the peer lacks goes this way, not pushed
    outright: the peer says no to what a push or fetch is already bringing
    it (its other peers' passes, their couriers), so a node that comes back
    receives each revision about once, not once per peer. Ids waiting in the
    peer's outbox are left to the courier, which offers them anyway.
    """
    db = app[db_key]
    pushed = 0
    for chunk in chunked(ids, OUTBOX_BATCH_IDS):
        held = await db.read(annonce_store.envelopes_by_id, chunk)
        queued = await db.read(outbox_store.queued_keys, peer_id, ANNONCE, chunk)
        offer = [key for key in chunk if key in held and key not in queued]
        if not offer:
            continue
        wanted = await app[peer_client_key].announce(url, offer)
        pushed += await _push_envelopes(app, url, peer_id, [held[key] for key in wanted])
    return pushed


async def _push_envelopes(app: web.Application, url: str, peer_id: bytes,
                          envelopes: list[bytes]) -> int:  # fmt: skip
    pushed = 0
    for batch in chunked(envelopes, FEDERATION_MAX_ENVELOPES):
        try:
            outcome = await app[peer_client_key].push(url, list(batch))
        except PeerRefused as refused:
            if refused.is_transient:
                raise
            log.warning("peer refused a batch",
                        extra={"peer": node_id_text(peer_id), "error": refused.detail})  # fmt: skip
            continue
        pushed += len(batch) - len(outcome.refused)
    return pushed
