"""The admin API's moderation endpoints: one annonce held, hidden or shown again.

    GET    /v1/annonces/{ref}              everything about one annonce held
    POST   /v1/annonces/{ref}/hide  {reason?}
    POST   /v1/annonces/{ref}/unhide

A hidden annonce stays stored and reconciled, but residents do not see it
and peers are not served it; the hide holds for its later revisions too
(storage.moderation). The rules are node.annonces' (``hide``, ``unhide``):
showing it again queues it for the peers, whose outbox items were dropped
while it was hidden. Both empty this process's cache of
visitors' search pages (node/web/page_cache.py, through the change signal);
other web workers' caches expire within seconds. Each answer is the annonce as GET
describes it. A ref that is not one is a 422 on ``ref``; a ref of no annonce
held here, a 404.
"""

from __future__ import annotations

from aiohttp import web

from node import annonces, directory
from node.admin.handlers import annonce_json, json_body, main_app, text_field
from node.keys import db_key, node_key_key
from protocol.annonce import parse_annonce_ref
from protocol.errors import DecodeError, ValidationError
from protocol.identity import node_id_text
from storage import annonces as annonce_store
from storage import moderation
from storage.annonces import StoredAnnonce
from storage.db import Connection
from storage.errors import NotFound

routes = web.RouteTableDef()


def _ref(request: web.Request) -> tuple[bytes, bytes]:
    ref = request.match_info["ref"]
    try:
        return parse_annonce_ref(ref)
    except DecodeError:
        raise ValidationError(f"not an annonce ref: {ref!r}", field="ref") from None


def _unknown(request: web.Request) -> NotFound:
    return NotFound(f"this node holds no annonce {request.match_info['ref']!r}")


def _about(conn: Connection, stored: StoredAnnonce) -> tuple[dict[bytes, str], int]:
    a = stored.annonce
    return directory.names(conn), moderation.open_reports(conn, a.origin, a.uid)


async def describe(app: web.Application, stored: StoredAnnonce) -> dict:
    """``annonce_json`` and what an operator moderating it wants to know."""
    a = stored.annonce
    names, open_reports = await app[db_key].read(_about, stored)
    described = annonce_json(stored)
    del described["source"]
    own = a.origin == app[node_key_key].node_id
    return {
        **described,
        "own": own,
        "origin_name": None if own else names.get(a.origin),
        "hidden_reason": stored.hidden_reason,
        "hidden_at": stored.hidden_at,
        "relayed_by": node_id_text(stored.source) if stored.source else None,
        "relayed_by_name": names.get(stored.source) if stored.source else None,
        "open_reports": open_reports,
    }


@routes.get("/v1/annonces/{ref}")
async def show_annonce(request: web.Request) -> web.Response:
    app = main_app(request)
    stored = await app[db_key].read(annonce_store.get_annonce, *_ref(request))
    if stored is None:
        raise _unknown(request)
    return web.json_response(await describe(app, stored))


@routes.post("/v1/annonces/{ref}/hide")
async def hide_annonce(request: web.Request) -> web.Response:
    app = main_app(request)
    origin, uid = _ref(request)
    body = await json_body(request) if request.can_read_body else {}
    reason = text_field(body, "reason", default="")
    try:
        stored = await annonces.hide(app, origin, uid, reason)
    except NotFound:
        raise _unknown(request) from None
    return web.json_response(await describe(app, stored))


@routes.post("/v1/annonces/{ref}/unhide")
async def unhide_annonce(request: web.Request) -> web.Response:
    app = main_app(request)
    try:
        stored = await annonces.unhide(app, *_ref(request))
    except NotFound:
        raise _unknown(request) from None
    return web.json_response(await describe(app, stored))
