"""The operator's decisions about other nodes: which to peer with, which origins to refuse.

Adding a peer takes two steps, so that the operator can compare the
fingerprint out of band, as with an SSH host key:

1. ``preview_peer(app, url)`` fetches the node document the URL serves and
   verifies it (``PeerClient.discover``);
2. ``add_peer(app, url, expected)`` fetches it again, checks that it is still
   the key the operator confirmed, stores the peer under the URL the document
   gives (the one its requests are signed for), and asks for an anti-entropy
   pass with it at once.

Nothing is stored unless every check passed. Blocking an origin drops what is
held of it, and from then on its revisions are neither stored nor forwarded,
whoever relays them (storage refuses them at ingest; nothing else stores).
"""

from __future__ import annotations

import logging

from aiohttp import web

from node.clock import now
from node.errors import PeerError, PeerRefused
from node.keys import (
    db_key,
    ignored_ids_key,
    node_key_key,
    peer_client_key,
    sync_trigger_key,
)
from protocol.errors import ValidationError
from protocol.identity import fingerprint, node_id_text
from protocol.nodedoc import NodeDocument
from storage import annonces as annonce_store
from storage import outbox as outbox_store
from storage import peers as peer_store
from storage.db import Connection
from storage.errors import Conflict
from storage.peers import Peer

log = logging.getLogger("troc.peers")

MAX_URL_CHARS = 2048
MAX_REASON_CHARS = 500


def check_peer_url(url: object) -> str:
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ValidationError("must be an http:// or https:// URL", field="url")
    if len(url) > MAX_URL_CHARS or not url.isascii() or any(c.isspace() for c in url):
        raise ValidationError("not a usable URL", field="url")
    return url


async def preview_peer(app: web.Application, url: str) -> NodeDocument:
    """The verified node document ``url`` serves; PeerError if it is not a Troc node."""
    doc = await app[peer_client_key].discover(check_peer_url(url))
    if doc.node_id == app[node_key_key].node_id:
        raise Conflict(f"{url} is this node itself")
    return doc


async def add_peer(app: web.Application, url: str, expected: bytes | None) -> Peer:
    """Store the node at ``url`` as a peer, if it still has the key the operator confirmed."""
    doc = await preview_peer(app, url)
    if expected is not None and doc.node_id != expected:
        raise Conflict(
            f"{url} now answers with another key (fingerprint {doc.fingerprint}), "
            "not the one confirmed: nothing was stored"
        )
    peer = await app[db_key].write(peer_store.add_peer, doc.node_id, doc.url, doc.name, now(app))
    app[sync_trigger_key].request(doc.node_id)
    log.info("peer added", extra={"peer": doc.id, "peer_name": doc.name, "url": doc.url})
    return peer


async def accepts_us(app: web.Application, peer: Peer) -> bool | None:
    """Whether the peer already accepts this node (None: it could not tell)."""
    try:
        await app[peer_client_key].node_document(peer.url, peer.node_id)
    except PeerRefused as refused:
        return False if refused.status in (401, 403) else None
    except PeerError:
        return None
    return True


async def remove_peer(app: web.Application, node_id: bytes) -> None:
    await app[db_key].write(peer_store.remove_peer, node_id)  # its annonces queued go with it
    log.info("peer removed", extra={"peer": node_id_text(node_id)})


async def block_origin(app: web.Application, origin: bytes, reason: str) -> int:
    """Refuse an origin from now on; how many of its revisions were dropped."""
    if origin == app[node_key_key].node_id:
        raise ValidationError("this node cannot block itself", field="origin")
    dropped = await app[db_key].write(_block, origin, reason[:MAX_REASON_CHARS], now(app))
    log.info("origin blocked", extra={"origin": node_id_text(origin), "dropped": dropped})
    return dropped


def _block(conn: Connection, origin: bytes, reason: str, at: int) -> int:
    dropped = peer_store.block_origin(conn, origin, reason, at)
    outbox_store.drop_dead(conn)  # what was queued of it goes too
    return dropped


async def unblock_origin(app: web.Application, origin: bytes) -> None:
    await app[db_key].write(peer_store.unblock_origin, origin)
    log.info("origin unblocked", extra={"origin": node_id_text(origin)})
    app[ignored_ids_key].clear()  # what was refused as blocked may be fetched again
    app[sync_trigger_key].request()


async def peer_summaries(app: web.Application) -> list[dict]:
    """Every peer with its state, last contact and counts, for operators."""
    peers, pending, held = await app[db_key].read(_peer_figures, now(app))
    return [
        {
            "node_id": node_id_text(p.node_id),
            "url": p.url,
            "name": p.name,
            "fingerprint": fingerprint(p.node_id),
            "state": p.state,
            "added_at": p.added_at,
            "last_contact": p.last_contact,
            "last_sync": p.last_sync,
            "last_error": p.last_error,
            "failures": p.failures,
            "next_try": p.next_try,
            "outbox": pending.get(p.node_id, 0),
            "annonces": held.get(p.node_id, {}).get("live", 0),
        }
        for p in peers
    ]


def _peer_figures(conn: Connection, at: int):
    return (peer_store.list_peers(conn), outbox_store.pending_counts(conn),
            annonce_store.counts_by_origin(conn, now=at))  # fmt: skip
