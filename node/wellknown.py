"""Discovery and health: ``/.well-known/troc``, NodeInfo 2.1 and ``/healthz``.

NodeInfo (``/.well-known/nodeinfo`` links to ``/nodeinfo/2.1``) is what
fediverse crawlers and directories read: the software and its version,
whether anyone may sign up, how many members and how many of this node's
own annonces are live. Counts only: no name, no address. Troc's own
protocol is named ``troc``, which NodeInfo's list of protocols does not
know; the schema's other fields are as it says.
"""

from __future__ import annotations

import logging

from aiohttp import web

from node.clock import now
from node.directory import own_document
from node.keys import db_key, node_document_key, node_key_key, settings_key
from node.problems import problem_response
from node.version import __version__
from protocol.nodedoc import sign_node_document
from storage.db import DatabaseFailure
from storage.errors import StorageError
from storage import annonces as annonce_store
from storage import residents
from storage.db import Connection
from storage.nodes import ping

log = logging.getLogger("troc.node")
routes = web.RouteTableDef()


def build_node_document(app: web.Application) -> dict[str, str]:
    """A freshly signed document, until the directory gives the one to serve (node.directory)."""
    return sign_node_document(app[node_key_key], own_document(app, now(app)))


@routes.get("/.well-known/troc")
async def node_document(request: web.Request) -> web.Response:
    return web.json_response(
        request.app[node_document_key],
        headers={"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"},
    )


NODEINFO_SCHEMA = "http://nodeinfo.diaspora.software/ns/schema/2.1"
NODEINFO_PATH = "/nodeinfo/2.1"
NODEINFO_CACHE_S = 1800  # crawlers ask often; the counts may be half an hour old
_NODEINFO_TYPE = f'application/json; profile="{NODEINFO_SCHEMA}#"'


@routes.get("/.well-known/nodeinfo")
async def nodeinfo_links(request: web.Request) -> web.Response:
    href = request.app[settings_key].public_url.rstrip("/") + NODEINFO_PATH
    return web.json_response({"links": [{"rel": NODEINFO_SCHEMA, "href": href}]},
                             headers=_CROSS_ORIGIN)  # fmt: skip


def _usage(conn: Connection, own: bytes, at: int) -> tuple[int, int]:
    live = annonce_store.counts_by_origin(conn, now=at).get(own, {}).get("live", 0)
    return residents.count_members(conn), live


@routes.get(NODEINFO_PATH)
async def nodeinfo(request: web.Request) -> web.Response:
    app = request.app
    settings = app[settings_key]
    members, live = await app[db_key].read(_usage, app[node_key_key].node_id, now(app))
    body = {
        "version": "2.1",
        "software": {"name": "troc", "version": __version__},
        "protocols": ["troc"],
        "services": {"inbound": [], "outbound": ["atom1.0", "smtp"] if settings.mail_enabled
                     else ["atom1.0"]},  # fmt: skip
        "openRegistrations": settings.registration == "open",
        "usage": {"users": {"total": members}, "localPosts": live},
        "metadata": {"nodeName": settings.name, "area": settings.area,
                     "nodeId": app[node_key_key].node_id_text},  # fmt: skip
    }
    response = web.json_response(body, headers=_CROSS_ORIGIN)
    response.headers["Content-Type"] = _NODEINFO_TYPE
    return response


_CROSS_ORIGIN = {"Cache-Control": f"public, max-age={NODEINFO_CACHE_S}",
                 "Access-Control-Allow-Origin": "*"}  # fmt: skip


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    try:
        await request.app[db_key].read(ping)
    except (DatabaseFailure, StorageError, OSError) as exc:
        log.warning("health check failed", extra={"error": type(exc).__name__})
        return problem_response(503, "database-unavailable", "the database does not answer")
    return web.json_response({"status": "ok"}, headers={"Cache-Control": "no-store"})
