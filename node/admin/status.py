"""The admin API's overview of the node: ``GET /v1/status``.

One answer an operator (``troc status``) or a monitoring script reads at a
glance: who the node is and since when it runs, its members by state, the
annonces it holds by origin, each peer with its last sync and outbox, the
private messages still to deliver, the federation traffic since start, and
the photos held (own and cached, files and bytes) and fetched since start.
``GET /v1/metrics`` gives the same node's figures for Prometheus (node.metrics).
Times are Unix seconds by the node's clock; ``lag_s`` is how long ago the
last anti-entropy pass with a peer succeeded (null: never).
"""

from __future__ import annotations

from aiohttp import web

from node import peering, photos
from node.metrics import metrics_response
from node.workers import worker_figures
from node.clock import now
from node.keys import (
    db_key,
    main_app_key,
    node_key_key,
    settings_key,
    started_at_key,
    traffic_key,
)
from node.version import __version__
from protocol.identity import fingerprint, node_id_text
from storage import annonces as annonce_store
from storage import outbox as outbox_store
from storage import photos as photo_store
from storage import residents
from storage.db import Connection
from storage.outbox import MESSAGE

routes = web.RouteTableDef()


def _figures(conn: Connection, at: int) -> tuple:
    return (residents.member_counts(conn), annonce_store.counts_by_origin(conn, now=at),
            annonce_store.count_hidden(conn), outbox_store.pending_count(conn, MESSAGE),
            photo_store.figures(conn))  # fmt: skip


@routes.get("/v1/status")
async def status(request: web.Request) -> web.Response:
    app = request.app[main_app_key]
    key, settings = app[node_key_key], app[settings_key]
    at, started = now(app), int(request.app[started_at_key])
    peers = [_with_lag(summary, at) for summary in await peering.peer_summaries(app)]
    members, counts, hidden, messages, held_photos = await app[db_key].read(_figures, at)
    return web.json_response({
        "node_id": key.node_id_text,
        "fingerprint": key.fingerprint,
        "name": settings.name,
        "url": settings.public_url,
        "version": __version__,
        "now": at,
        "started_at": started,
        "uptime_s": max(0, at - started),
        "members": members,
        "annonces": _annonce_counts(app, counts, hidden, {p["node_id"]: p["name"] for p in peers}),
        "peers": peers,
        "outbox": sum(p["outbox"] for p in peers),
        "messages": {"pending_deliveries": messages},
        "traffic": app[traffic_key].as_dict(),
        "photos": photos.status_figures(app, held_photos),
        "workers": await worker_figures(app),
    })  # fmt: skip


def _with_lag(summary: dict, at: int) -> dict:
    last_sync = summary["last_sync"]
    return {**summary, "lag_s": None if last_sync is None else max(0, at - last_sync)}


def _annonce_counts(app: web.Application, counts: dict, hidden: int,
                    peer_names: dict[str, str]) -> dict:  # fmt: skip
    """Totals, and per origin: live and withdrawn, named when the origin is us or a peer."""
    own = app[node_key_key].node_id
    by_origin = []
    for origin, held in counts.items():
        origin_text = node_id_text(origin)
        name = app[settings_key].name if origin == own else peer_names.get(origin_text)
        by_origin.append({"origin": origin_text, "fingerprint": fingerprint(origin),
                          "name": name, "is_peer": origin_text in peer_names,
                          "live": held["live"], "withdrawn": held["withdrawn"]})  # fmt: skip
    by_origin.sort(key=lambda o: (-o["live"], o["origin"]))
    return {
        "live": sum(c["live"] for c in counts.values()),
        "withdrawn": sum(c["withdrawn"] for c in counts.values()),
        "own": counts.get(own, {}).get("live", 0),
        "hidden": hidden,
        "by_origin": by_origin,
    }


@routes.get("/v1/metrics")
async def metrics(request: web.Request) -> web.Response:
    """The Prometheus text exposition (node.metrics), for a scraper that reads the socket."""
    return await metrics_response(request.app[main_app_key])
