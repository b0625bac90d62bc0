"""The federation API's private messages: ``POST /federation/v1/message``.

A peer delivers one message of a conversation between one of its members and
one of ours (docs/protocol-federation.md section 8). The request is
authenticated before this runs (node.federation.auth); the message is
decoded strictly here (protocol.conversations), and node.conversations checks
it against what this node holds and stores it once per message id.
"""

from __future__ import annotations

from aiohttp import web

from node import conversations
from node.federation.api import msgpack_response
from node.federation.auth import body_key, known_sender_key, peer_id_key
from node.keys import main_app_key
from protocol.conversations import decode_private_message, encode_message_answer

routes = web.RouteTableDef()


@routes.post("/message")
async def private_message(request: web.Request) -> web.Response:
    """One message for one of our members; stored once, whatever the retries."""
    message = decode_private_message(request[body_key])
    stored = await conversations.receive(
        request.app[main_app_key], request[peer_id_key], request[known_sender_key], message
    )
    return msgpack_response(encode_message_answer(duplicate=not stored))
