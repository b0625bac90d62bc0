"""The federation API's reports: ``POST /federation/v1/report``.

A peer forwards a resident's report of one of our annonces
(docs/protocol-federation.md section 9). The request is authenticated before
this runs (node.federation.auth); the report is decoded strictly
(protocol.reports), then node.reports checks it against what this node holds
and stores it once per key.
"""

from __future__ import annotations

from aiohttp import web

from node import reports
from node.federation.api import msgpack_response
from node.federation.auth import body_key, known_sender_key, peer_id_key
from node.keys import main_app_key
from protocol.reports import decode_report, encode_report_answer

routes = web.RouteTableDef()


@routes.post("/report")
async def forwarded_report(request: web.Request) -> web.Response:
    """A report of one of our annonces, from a peer; stored once, whatever the retries."""
    report = decode_report(request[body_key])
    stored = await reports.receive(
        request.app[main_app_key], request[peer_id_key], request[known_sender_key], report
    )
    return msgpack_response(encode_report_answer(duplicate=not stored))
