"""The federation API's thanks: ``POST /federation/v1/exchange`` and ``/merci``.

The annonce's node states who helped (an exchange) to the other member's node,
which answers its own signature over it; then each side's node sends its
member's merci (docs/protocol-thanks.md). The request is authenticated before
this runs (node.federation.auth); the signed statement is verified and decoded
strictly here (protocol.thanks), and node.thanks checks it against what this
node holds and stores it once.
"""

from __future__ import annotations

from aiohttp import web

from node import thanks
from node.federation.api import msgpack_response
from node.federation.auth import body_key, known_sender_key, peer_id_key
from node.keys import main_app_key
from protocol.thanks import (
    encode_exchange_answer,
    encode_merci_answer,
    open_exchange,
    open_merci,
)

routes = web.RouteTableDef()


@routes.post("/exchange")
async def exchange(request: web.Request) -> web.Response:
    """Who helped, about a conversation with one of our members; acknowledged, once."""
    signed = open_exchange(request[body_key])
    duplicate, ack = await thanks.receive_exchange(
        request.app[main_app_key], request[peer_id_key], request[known_sender_key], signed
    )
    return msgpack_response(encode_exchange_answer(duplicate, ack))


@routes.post("/merci")
async def merci(request: web.Request) -> web.Response:
    """One side's merci for one of our members' exchanges; stored once."""
    signed = open_merci(request[body_key])
    stored = await thanks.receive_merci(
        request.app[main_app_key], request[peer_id_key], request[known_sender_key], signed
    )
    return msgpack_response(encode_merci_answer(duplicate=not stored))
