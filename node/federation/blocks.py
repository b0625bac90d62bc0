"""The federation API's block notices: ``POST /federation/v1/block``.

A node tells us that one of its members blocked (or no longer blocks) one of
ours (docs/protocol-safety.md). The request is authenticated before this
runs (node.federation.auth); the notice is decoded strictly here
(protocol.blocks), and node.blocks checks it and applies our half.
"""

from __future__ import annotations

from aiohttp import web

from node import blocks
from node.federation.api import msgpack_response
from node.federation.auth import body_key, known_sender_key, peer_id_key
from node.keys import main_app_key
from protocol.blocks import decode_block, encode_block_answer

routes = web.RouteTableDef()


@routes.post("/block")
async def block_notice(request: web.Request) -> web.Response:
    """One block (or its lifting) of one of our members; applied once, whatever the retries."""
    notice = decode_block(request[body_key])
    applied = await blocks.receive(
        request.app[main_app_key], request[peer_id_key], request[known_sender_key], notice
    )
    return msgpack_response(encode_block_answer(applied))
