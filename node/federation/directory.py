"""The federation API's directory of nodes: ``nodes``, ``nodes-digest``, ``nodes-fetch``.

Gossip between accepted peers, like announce and push (docs/protocol-federation.md
section 11): a peer pushes directory records (node documents, key
successions), compares its directory's digest with ours, and fetches the
records it lacks. The rules are node.directory's; these handlers decode,
call it, and encode.
"""

from __future__ import annotations

from aiohttp import web

from node import directory
from node.federation.api import msgpack_response
from node.federation.auth import body_key, peer_id_key
from node.keys import main_app_key
from protocol import directory as wire

routes = web.RouteTableDef()


@routes.post("/nodes")
async def push(request: web.Request) -> web.Response:
    """Records from a peer: the newer ones are stored and passed on."""
    raw = wire.decode_nodes(request[body_key])
    outcome = await directory.receive(request.app[main_app_key], raw, request[peer_id_key])
    return msgpack_response(wire.encode_nodes_outcome(outcome))


@routes.post("/nodes-digest")
async def digest(request: web.Request) -> web.Response:
    """Our digest, and our entries when the peer's digest differs."""
    theirs = wire.decode_digest(request[body_key])
    ours, entries = await directory.digest_answer(request.app[main_app_key], theirs)
    return msgpack_response(wire.encode_digest_answer(ours, entries))


@routes.post("/nodes-fetch")
async def fetch(request: web.Request) -> web.Response:
    """The records the peer asks for, those we hold."""
    keys = wire.decode_fetch(request[body_key])
    records = await directory.records_for(request.app[main_app_key], keys)
    return msgpack_response(wire.encode_records(records))
