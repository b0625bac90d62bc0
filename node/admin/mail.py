"""The admin API's mail: the relay's queue and state, a retry, a test mail (node.mail_status).

    GET  /v1/mail               the queue, the relay's state, notifications waiting
    POST /v1/mail/retry         one round to the relay at once, whatever its back-off
    POST /v1/mail/test {to}     queue a test mail to ``to`` and send it at once
"""

from __future__ import annotations

from aiohttp import web

from node import mail_status
from node.addresses import AddressRefused, normalise
from node.admin.handlers import json_body, text_field
from node.keys import main_app_key
from protocol.errors import ValidationError

routes = web.RouteTableDef()


@routes.get("/v1/mail")
async def relay_status(request: web.Request) -> web.Response:
    return web.json_response(await mail_status.mail_status(request.app[main_app_key]))


@routes.post("/v1/mail/retry")
async def mail_retry(request: web.Request) -> web.Response:
    return web.json_response(await mail_status.retry_now(request.app[main_app_key]))


@routes.post("/v1/mail/test")
async def mail_test(request: web.Request) -> web.Response:
    body = await json_body(request)
    try:
        address = normalise(text_field(body, "to"))
    except AddressRefused:
        raise ValidationError("not a valid e-mail address", field="to") from None
    return web.json_response(await mail_status.send_test(request.app[main_app_key], address))
