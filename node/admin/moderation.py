"""The admin API's moderation endpoints: one annonce held, hidden or shown again.

    GET    /v1/annonces/{ref}              everything about one annonce held
    POST   /v1/annonces/{ref}/hide  {reason?}
    POST   /v1/annonces/{ref}/unhide

A hidden annonce stays stored and reconciled, but residents do not see it
and peers are not served it; the hide holds for its later revisions too
(storage.moderation). Showing it again queues it for the peers, whose outbox
rows were dropped while it was hidden. Both empty this process's cache of
visitors' search pages (node/web/page_cache.py); other web workers' caches
expire within seconds. Each answer is the annonce as GET
describes it. A ref that is not one is a 422 on ``ref``; a ref of no annonce
held here, a 404.
"""

from __future__ import annotations

import logging

from aiohttp import web

from node.admin.handlers import annonce_json, json_body, main_app, text_field
from node.gossip import queue_for_peers
from node.keys import clock_key, db_key, node_key_key
from node.web.keys import page_cache_key
from protocol.annonce import parse_annonce_ref
from protocol.errors import DecodeError, ValidationError
from protocol.identity import node_id_text
from storage import annonces as annonce_store
from storage import moderation
from storage import peers as peer_store
from storage.annonces import StoredAnnonce
from storage.errors import NotFound

log = logging.getLogger("troc.moderation")

routes = web.RouteTableDef()


def _ref(request: web.Request) -> tuple[bytes, bytes]:
    ref = request.match_info["ref"]
    try:
        return parse_annonce_ref(ref)
    except DecodeError:
        raise ValidationError(f"not an annonce ref: {ref!r}", field="ref") from None


def _unknown(request: web.Request) -> NotFound:
    return NotFound(f"this node holds no annonce {request.match_info['ref']!r}")


async def _peer_name(app: web.Application, node_id: bytes | None) -> str | None:
    if node_id is None:
        return None
    peer = await peer_store.get_peer(app[db_key], node_id)
    return peer.name if peer else None


async def describe(app: web.Application, stored: StoredAnnonce) -> dict:
    """``annonce_json`` and what an operator moderating it wants to know."""
    a, db = stored.annonce, app[db_key]
    described = annonce_json(stored)
    del described["source"]
    own = a.origin == app[node_key_key].node_id
    return {
        **described,
        "own": own,
        "origin_name": None if own else await _peer_name(app, a.origin),
        "hidden_reason": stored.hidden_reason,
        "hidden_at": stored.hidden_at,
        "relayed_by": node_id_text(stored.source) if stored.source else None,
        "relayed_by_name": await _peer_name(app, stored.source),
        "open_reports": await moderation.open_reports(db, a.origin, a.uid),
    }


@routes.get("/v1/annonces/{ref}")
async def show_annonce(request: web.Request) -> web.Response:
    app = main_app(request)
    stored = await annonce_store.get_annonce(app[db_key], *_ref(request))
    if stored is None:
        raise _unknown(request)
    return web.json_response(await describe(app, stored))


@routes.post("/v1/annonces/{ref}/hide")
async def hide_annonce(request: web.Request) -> web.Response:
    app = main_app(request)
    origin, uid = _ref(request)
    body = await json_body(request) if request.can_read_body else {}
    reason = text_field(body, "reason", default="")
    stored = await moderation.hide_annonce(
        app[db_key], origin, uid, reason=reason, now=int(app[clock_key]())
    )
    if stored is None:
        raise _unknown(request)
    app[page_cache_key].clear()  # visitors' cached search pages may show it
    log.info("annonce hidden", extra={"ref": stored.annonce.ref, "reason": reason})
    return web.json_response(await describe(app, stored))


@routes.post("/v1/annonces/{ref}/unhide")
async def unhide_annonce(request: web.Request) -> web.Response:
    app = main_app(request)
    origin, uid = _ref(request)
    before = await annonce_store.get_annonce(app[db_key], origin, uid)
    if before is None:
        raise _unknown(request)
    stored = await moderation.unhide_annonce(app[db_key], origin, uid)
    if stored is None:  # purged meanwhile
        raise _unknown(request)
    if before.hidden:
        app[page_cache_key].clear()
        await queue_for_peers(app, [(stored.id, origin)], stored.source)
        log.info("annonce shown again", extra={"ref": stored.annonce.ref})
    return web.json_response(await describe(app, stored))
