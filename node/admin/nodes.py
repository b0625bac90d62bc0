"""The admin API's directory of nodes and key changes: thin over node.directory, node.succession.

    GET    /v1/nodes                       every node known: name, URL, area, fingerprint,
                                           whether it is a peer, refused, or replaced
    POST   /v1/nodes/{node_id}/refuse  {reason?}   refuse its point-to-point requests
    DELETE /v1/nodes/{node_id}/refuse              take them again
    POST   /v1/key/rotate                  a new node key, and its succession published
"""

from __future__ import annotations

import logging

from aiohttp import web

from node import succession
from node.admin.handlers import json_body, main_app, node_id_field, text_field
from node.clock import now
from node.keys import db_key, node_key_key
from protocol.identity import fingerprint, node_id_text
from storage import directory as store
from storage import peers as peer_store
from storage.db import Connection

log = logging.getLogger("troc.peers")
routes = web.RouteTableDef()


def _listing(conn: Connection):
    return (store.list_nodes(conn), {p.node_id for p in peer_store.list_peers(conn)},
            store.refused(conn), {h.old: h for h in store.all_successions(conn)})  # fmt: skip


@routes.get("/v1/nodes")
async def list_nodes(request: web.Request) -> web.Response:
    app = main_app(request)
    known, peers, refused, successions = await app[db_key].read(_listing)
    own = app[node_key_key].node_id
    answer = []
    for node in known:
        replaced = successions.get(node.node_id)
        answer.append({
            "node_id": node_id_text(node.node_id), "name": node.name, "url": node.url,
            "area": node.area, "fingerprint": fingerprint(node.node_id), "issued": node.issued,
            "own": node.node_id == own, "peer": node.node_id in peers,
            "refused": refused.get(node.node_id),
            "replaced_by": (node_id_text(replaced.new) if replaced and replaced.new
                            else ("revoked" if replaced else None)),
            "recovery": node.recovery is not None,
        })  # fmt: skip
    return web.json_response(answer)


@routes.post("/v1/nodes/{node_id}/refuse")
async def refuse(request: web.Request) -> web.Response:
    app = main_app(request)
    node_id = node_id_field(request.match_info["node_id"], "node_id")
    body = await json_body(request) if request.can_read_body else {}
    reason = text_field(body, "reason", default="")
    await app[db_key].write(store.refuse_node, node_id, reason, now(app))
    log.info("node refused", extra={"node": node_id_text(node_id), "reason": reason})
    return web.json_response({"node_id": node_id_text(node_id), "refused": reason})


@routes.delete("/v1/nodes/{node_id}/refuse")
async def accept(request: web.Request) -> web.Response:
    app = main_app(request)
    node_id = node_id_field(request.match_info["node_id"], "node_id")
    await app[db_key].write(store.accept_node, node_id)
    log.info("node accepted again", extra={"node": node_id_text(node_id)})
    return web.Response(status=204)


@routes.post("/v1/key/rotate")
async def rotate(request: web.Request) -> web.Response:
    changed = await succession.rotate(main_app(request))
    return web.json_response({
        "old": node_id_text(changed.old_id), "new": changed.new_key.node_id_text,
        "fingerprint": changed.new_key.fingerprint, "republished": changed.republished,
        "old_key_kept_as": str(changed.old_key_kept_as) if changed.old_key_kept_as else None,
    })  # fmt: skip
