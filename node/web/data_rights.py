"""The member's own data: download it (``/compte/donnees``), delete the account
(``/compte/supprimer``).

The download is a POST (the page's button), so that another site cannot make
a logged-in browser fetch it: the web middleware checks the CSRF token of
every POST. The file is streamed as node.erasure writes it.

Deleting asks for the password again, on a page that says plainly what
happens; node.erasure does it in one unit of work, then the browser's session
cookie goes and a last page says it is done.
"""

from __future__ import annotations

import time

from aiohttp import web

from node import accounts, erasure
from node.clock import now
from node.i18n import Msg
from node.web.common import require_member
from node.web.forms import Form
from node.web.keys import member_rkey
from node.web.middleware import SECURITY_HEADERS
from node.web.render import render
from node.web.session import end_session

routes = web.RouteTableDef()

DOWNLOAD_PATH = "/compte/donnees"
DELETE_PATH = "/compte/supprimer"
MAX_PASSWORD_CHARS = 200


@routes.get(DOWNLOAD_PATH)
async def data_page(request: web.Request) -> web.Response:
    require_member(request)
    return await render(request, "account_data.html", {"nav": "profile"})


@routes.post(DOWNLOAD_PATH)
async def download(request: web.Request) -> web.StreamResponse:
    member = require_member(request)
    day = time.strftime("%Y-%m-%d", time.gmtime(now(request.app)))
    response = web.StreamResponse(headers={
        **SECURITY_HEADERS,
        "Content-Type": "application/json; charset=utf-8",
        "Content-Disposition": f'attachment; filename="troc-{member.handle}-{day}.json"',
        "Cache-Control": "private, no-store",
    })  # fmt: skip
    await response.prepare(request)
    async for chunk in erasure.export(request.app, member):
        await response.write(chunk)
    await response.write_eof()
    return response


@routes.get(DELETE_PATH)
async def delete_page(request: web.Request) -> web.Response:
    require_member(request)
    return await render(request, "account_delete.html", {"form": Form(), "nav": "profile"})


@routes.post(DELETE_PATH)
async def delete_account(request: web.Request) -> web.Response:
    member = require_member(request)
    form = Form(await request.post())
    password = form.raw("mot_de_passe")
    if not password:
        form.error("mot_de_passe", Msg("Ce champ est obligatoire."))
    elif len(password) > MAX_PASSWORD_CHARS or not await accounts.check_password(
            request.app, member, password):  # fmt: skip
        form.error("mot_de_passe", Msg("Ce n'est pas votre mot de passe."))
    if not form.ok:
        return await render(request, "account_delete.html", {"form": form, "nav": "profile"},
                            status=422)  # fmt: skip
    await erasure.delete_own(request.app, member)
    request[member_rkey] = None  # the page is for a visitor now
    response = await render(request, "account_deleted.html")
    await end_session(request, response)
    return response
