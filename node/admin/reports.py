"""The admin API's reports: thin over node.reports.

    GET    /v1/reports?all=1              open reports (every report with all=1)
    GET    /v1/reports/{id}               one report, a reported message's text included
    POST   /v1/reports/{id}/resolve  {note?}
    POST   /v1/reports/{id}/forward       to the annonce's origin node; waits for it

Answers are JSON: a report as node.reports.report_json makes it.
"""

from __future__ import annotations

from aiohttp import web

from node import reports
from node.admin.handlers import json_body, text_field
from node.keys import main_app_key
from protocol.errors import ValidationError

routes = web.RouteTableDef()

MAX_REPORT_ID = 2**63 - 1


def _report_id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_REPORT_ID:
        raise ValidationError(f"not a report id: {raw!r} (a whole number, from the list)",
                              field="id")  # fmt: skip
    return int(raw)


@routes.get("/v1/reports")
async def list_reports(request: web.Request) -> web.Response:
    every_state = request.query.get("all", "") == "1"
    listed = await reports.report_summaries(request.app[main_app_key], every_state=every_state)
    return web.json_response(listed)


@routes.get("/v1/reports/{id}")
async def show_report(request: web.Request) -> web.Response:
    app = request.app[main_app_key]
    return web.json_response(await reports.summary_of(app, _report_id(request)))


@routes.post("/v1/reports/{id}/resolve")
async def resolve_report(request: web.Request) -> web.Response:
    report_id = _report_id(request)
    app, body = request.app[main_app_key], await json_body(request)
    note = text_field(body, "note", required=False)
    resolved = await reports.resolve(app, report_id, note or None)
    return web.json_response(await reports.summary(app, resolved))


@routes.post("/v1/reports/{id}/forward")
async def forward_report(request: web.Request) -> web.Response:
    app = request.app[main_app_key]
    forwarded = await reports.forward(app, _report_id(request))
    answer = await reports.summary(app, forwarded.report)
    return web.json_response({**answer, "to": forwarded.to, "duplicate": forwarded.duplicate})
