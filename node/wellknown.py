"""Discovery and health: ``/.well-known/troc`` and ``/healthz``."""

from __future__ import annotations

import logging

from aiohttp import web

from node.clock import now
from node.directory import own_document
from node.keys import db_key, node_document_key, node_key_key
from node.problems import problem_response
from protocol.nodedoc import sign_node_document
from storage.db import DatabaseFailure
from storage.errors import StorageError
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


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    try:
        await request.app[db_key].read(ping)
    except (DatabaseFailure, StorageError, OSError) as exc:
        log.warning("health check failed", extra={"error": type(exc).__name__})
        return problem_response(503, "database-unavailable", "the database does not answer")
    return web.json_response({"status": "ok"}, headers={"Cache-Control": "no-store"})
