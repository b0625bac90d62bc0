"""The admin API: JSON for the ``troc`` command, on a Unix socket only.

``create_admin_app(main_app, token=...)`` builds a separate application that
``node/runner.py`` serves on ``settings.admin_socket_path`` (mode 0600) next
to the public TCP site. It holds the node's own application under
``main_app_key``, so both share one database, key, clock, peer client and
revision listeners: what the admin API publishes is forwarded like anything
else. Every request needs ``Authorization: Bearer <token>`` (the token file
``troc init`` wrote), compared in constant time; refusals are RFC 9457 problem
documents (node.problems). The endpoints are listed in node/admin/handlers.py,
node/admin/moderation.py, node/admin/reports.py, node/admin/status.py,
node/admin/members.py, node/admin/nodes.py, node/admin/mail.py and
node/admin/sheet.py.
"""

from __future__ import annotations

import hmac

from aiohttp import web

from node.admin import mail, members, moderation, nodes, sheet, status
from node.admin.handlers import routes
from node.admin.reports import routes as report_routes
from node.clock import now_precise
from node.keys import admin_token_key, main_app_key, started_at_key
from node.problems import problem_response, problems_middleware
from node.settings import Secret

BEARER = "Bearer "


@web.middleware
async def admin_auth_middleware(request: web.Request, handler) -> web.StreamResponse:
    given = request.headers.get("Authorization", "")
    expected = request.app[admin_token_key].reveal()
    token = given[len(BEARER):] if given.startswith(BEARER) else ""
    if not hmac.compare_digest(token.encode("utf-8"), expected.encode("utf-8")):
        response = problem_response(401, "unauthenticated", "a valid admin token is required")
        response.headers["WWW-Authenticate"] = "Bearer"
        return response
    return await handler(request)


def create_admin_app(main_app: web.Application, *, token: Secret) -> web.Application:
    admin = web.Application(middlewares=[problems_middleware, admin_auth_middleware])
    admin[main_app_key] = main_app
    admin[admin_token_key] = token
    admin[started_at_key] = now_precise(main_app)
    admin.add_routes(routes)
    admin.add_routes(moderation.routes)
    admin.add_routes(report_routes)
    admin.add_routes(members.routes)
    admin.add_routes(status.routes)
    admin.add_routes(nodes.routes)
    admin.add_routes(mail.routes)
    admin.add_routes(sheet.routes)
    return admin
