"""Reporting an annonce to the node's moderators, with a reason."""

from __future__ import annotations

from aiohttp import web

from node import reports as node_reports
from node.web.annonces import visible_annonce
from node.web.common import require_member
from node.web.forms import Form
from node.web.labels import REPORT_REASONS
from node.web.render import render
from protocol.limits import REPORT_MAX_DETAILS_CHARS

routes = web.RouteTableDef()


@routes.get("/annonces/{ref}/signaler")
async def report_form(request: web.Request) -> web.Response:
    require_member(request)
    annonce = (await visible_annonce(request)).annonce
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
    await node_reports.report(request.app, member.id, annonce, reason, details)
    return await render(request, "report_sent.html", {"annonce": annonce})
