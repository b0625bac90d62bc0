"""About the node: the association, its area, its peers, a few figures."""

from __future__ import annotations

from aiohttp import web

from node.clock import now
from node.keys import communes_key, db_key, node_key_key, settings_key
from node.web.render import render
from storage import annonces as annonce_store
from storage import peers as peer_store
from storage import residents
from storage.db import Connection

routes = web.RouteTableDef()


def _figures(conn: Connection, origin: bytes, at: int) -> dict:
    figures = annonce_store.open_figures(conn, origin, now=at)
    return {"held": figures.held, "own": figures.own, "origins": figures.origins,
            "members": residents.count_members(conn), "peers": sorted(peer_store.list_peers(conn), key=lambda p: p.name)}  # fmt: skip


@routes.get("/a-propos")
async def about(request: web.Request) -> web.Response:
    key = request.app[node_key_key]
    figures = await request.app[db_key].read(_figures, key.node_id, now(request.app))
    return await render(request, "about.html", {
        "settings": request.app[settings_key], "fingerprint": key.fingerprint,
        "communes": request.app[communes_key], "figures": figures, "nav": "about",
    })  # fmt: skip
