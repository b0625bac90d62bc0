"""The residents' rights pages: privacy, accessibility, legal notice.

Their texts are in the templates; what varies comes from the association's
settings (``contact``, node/association.py, shared by every template) and,
for the privacy page, from the durations the node enforces
(node/privacy.py). Each page is linked from every page's footer.
"""

from __future__ import annotations

import datetime as dt

from aiohttp import web

from node.keys import settings_key
from node.privacy import keeping
from node.web.render import PARIS, render

routes = web.RouteTableDef()

PRIVACY_PATH = "/confidentialite"
ACCESSIBILITY_PATH = "/accessibilite"
LEGAL_PATH = "/mentions-legales"
# The resident's own data: built by the account pages.
DOWNLOAD_PATH = "/compte/donnees"
DELETE_PATH = "/compte/supprimer"
# The day the accessibility statement was last checked against the pages: change it with them.
ACCESSIBILITY_STATEMENT_DAY = dt.date(2026, 12, 2)


@routes.get(PRIVACY_PATH)
async def privacy(request: web.Request) -> web.Response:
    settings = request.app[settings_key]
    return await render(request, "privacy.html", {
        "keeping": keeping(settings), "mail_enabled": settings.mail_enabled,
        "download_path": DOWNLOAD_PATH, "delete_path": DELETE_PATH, "nav": "privacy",
    })  # fmt: skip


@routes.get(ACCESSIBILITY_PATH)
async def accessibility(request: web.Request) -> web.Response:
    day = dt.datetime.combine(ACCESSIBILITY_STATEMENT_DAY, dt.time(12), PARIS)
    return await render(request, "accessibility.html", {
        "statement_date": int(day.timestamp()), "nav": "accessibility",
    })  # fmt: skip


@routes.get(LEGAL_PATH)
async def legal(request: web.Request) -> web.Response:
    settings = request.app[settings_key]
    return await render(request, "legal.html", {"public_url": settings.public_url, "nav": "legal"})
