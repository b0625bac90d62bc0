"""Reporting an annonce to the node's moderators, with a reason.

Sending the report redirects to its acknowledgement (POST, then GET), and
the form's one-time token makes the same form sent twice one report.
"""

from __future__ import annotations

from aiohttp import web

from node import reports as node_reports
from node.web.annonces import visible_annonce
from node.web.common import require_member
from node.web.forms import Form
from node.web.labels import REPORT_REASONS
from node.web.render import render
from protocol.limits import REPORT_MAX_DETAILS_CHARS
from storage.errors import AlreadySubmitted

routes = web.RouteTableDef()
SENT = "envoye"


@routes.get("/annonces/{ref}/signaler")
async def report_form(request: web.Request) -> web.Response:
    require_member(request)
    annonce = (await visible_annonce(request)).annonce
    if SENT in request.query:
        return await render(request, "report_sent.html", {"annonce": annonce})
    return await render(request, "report.html", {"annonce": annonce, "form": Form(),
                                                  "reasons": REPORT_REASONS})  # fmt: skip


@routes.post("/annonces/{ref}/signaler")
async def report(request: web.Request) -> web.Response:
    member = require_member(request)
    annonce = (await visible_annonce(request)).annonce
    form = Form(await request.post())
    reason = form.choice("raison", REPORT_REASONS)
    details = form.text("details", max_chars=REPORT_MAX_DETAILS_CHARS, multiline=True)
    if not form.ok:
        return await render(request, "report.html", {"annonce": annonce, "form": form,
                            "reasons": REPORT_REASONS}, status=422)  # fmt: skip
    try:
        await node_reports.report(request.app, member.id, annonce, reason, details,
                                  form=form.key(member.id))  # fmt: skip
    except AlreadySubmitted:
        pass  # sent twice: the first one is the report
    raise web.HTTPSeeOther(f"/annonces/{annonce.ref}/signaler?{SENT}=1")
