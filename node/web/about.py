"""About the node: the association, its area, its peers, a few figures."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import func, select

from node.keys import node_key_key, settings_key
from node.web.keys import communes_key, reader_key
from node.web.render import now_of, render
from storage import residents
from storage.schema import annonces, peers

routes = web.RouteTableDef()


def _figures(conn, origin: bytes, now: int) -> dict:
    live = (annonces.c.state == "open") & (annonces.c.expires > now) & ~annonces.c.hidden
    held = conn.execute(select(func.count()).select_from(annonces).where(live)).scalar_one()
    own = conn.execute(
        select(func.count()).select_from(annonces).where(live, annonces.c.origin == origin)
    ).scalar_one()
    origins = conn.execute(select(func.count(func.distinct(annonces.c.origin))).where(live)).scalar_one()
    peer_rows = conn.execute(select(peers.c.name, peers.c.url, peers.c.state)
                             .order_by(peers.c.name)).all()  # fmt: skip
    return {"held": held, "own": own, "origins": origins, "members": residents.count_members(conn),
            "peers": peer_rows}  # fmt: skip


@routes.get("/a-propos")
async def about(request: web.Request) -> web.Response:
    key = request.app[node_key_key]
    figures = await request.app[reader_key].run(_figures, key.node_id, now_of(request))
    return await render(request, "about.html", {
        "settings": request.app[settings_key], "fingerprint": key.fingerprint,
        "communes": request.app[communes_key], "figures": figures, "nav": "about",
    })  # fmt: skip
