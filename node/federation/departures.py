"""The federation API's departure notices: ``POST /federation/v1/departure``.

A node tells us that one of its members deleted their account, for one
conversation between that member and one of ours (docs/protocol-rights.md).
The request is authenticated before this runs (node.federation.auth); the
notice is decoded strictly here (protocol.departure), and node.erasure checks
it and anonymises our copy of the conversation.
"""

from __future__ import annotations

from aiohttp import web

from node import erasure
from node.federation.api import msgpack_response
from node.federation.auth import body_key, known_sender_key, peer_id_key
from node.keys import main_app_key
from protocol.departure import decode_departure, encode_departure_answer

routes = web.RouteTableDef()


@routes.post("/departure")
async def departure_notice(request: web.Request) -> web.Response:
    """One conversation whose party of the signing node left; anonymised once."""
    notice = decode_departure(request[body_key])
    anonymised = await erasure.receive_departure(
        request.app[main_app_key], request[peer_id_key], request[known_sender_key], notice
    )
    return msgpack_response(encode_departure_answer(duplicate=not anonymised))
