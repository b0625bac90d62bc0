"""The admin API's printed sheet (node.sheet), for ``troc sheet``.

    GET /v1/sheet?commune=47001&commune=47031   the sheet of those communes
    GET /v1/sheet                               the sheet of ``sheet_communes``

The answer is JSON: the PDF in base64 (``pdf``), how many annonces it lists,
its communes and when it was made. A commune that is not one of the area is
a 422 problem naming the field ``commune``.
"""

from __future__ import annotations

import base64

from aiohttp import web

from node import sheet
from node.keys import main_app_key

routes = web.RouteTableDef()


@routes.get("/v1/sheet")
async def sheet_of_communes(request: web.Request) -> web.Response:
    asked = [code for code in request.query.getall("commune", []) if code.strip()]
    made = await sheet.make_sheet(request.app[main_app_key], asked)
    return web.json_response({
        "pdf": base64.b64encode(made.pdf).decode("ascii"), "annonces": made.annonces,
        "communes": list(made.communes), "made_at": made.made_at,
    })  # fmt: skip
