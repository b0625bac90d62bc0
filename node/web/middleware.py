"""The web view's middleware: language, identity, CSRF, HTML errors, security headers, transport.

It runs only for the residents' pages: the federation, admin and discovery
APIs keep their own error shape (RFC 9457, node/problems.py). An unknown path
is answered in HTML only to a browser (one that accepts text/html).

A client that goes away in the middle of its request (a form upload cut
off) is one INFO line: nothing to answer, and nothing for the operator to
fix. Compression and static caching are node/web/transport.py.
"""

from __future__ import annotations

import logging

from aiohttp import web

from node.i18n import DEFAULT_LANGUAGE, LANGUAGE_COOKIE, negotiate
from node.keys import settings_key, translators_key
from node.problems import RETRY_AFTER_S, status_for
from node.web.keys import member_rkey, static_versions_key, translator_rkey
from node.web.labels import ERROR_TEXTS, ERROR_TITLES
from node.web.render import render
from node.web.session import CSRF_FIELD, csrf_valid, identify, set_cookies
from node.web.transport import travel
from node.web.uploads import read_form
from protocol.errors import TrocError

log = logging.getLogger("troc.web")

API_PREFIXES = ("/federation", "/admin", "/.well-known", "/healthz", "/api")

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}

# RFC 8058 one-click unsubscribe: a mail client POSTs ``List-Unsubscribe=One-Click``
# to the link of the mail's List-Unsubscribe header, with no cookie and no form
# token, so these POSTs go without the CSRF check. The token in the path is the
# proof (an HMAC of the node naming the member and the kinds, node/notifications.py),
# and all such a POST can do is stop mail to that member: nothing a forged
# request could abuse. Exempt by the route the router matched (its name, given in
# node/web/notices.py), not by the path's text: only ``/desabonnement/{token}``.
CSRF_EXEMPT_ROUTES = frozenset({"unsubscribe"})


def is_web_path(path: str) -> bool:
    return not path.startswith(API_PREFIXES)


async def error_page(request: web.Request, status: int, *, title=None, text=None) -> web.Response:
    """The page of an error: the words of its status, or those the handler gave (``title``, ``text``)."""
    known = status if status in ERROR_TITLES else (500 if status >= 500 else 400)
    return await render(request, "error.html", {
        "status": status, "title": title or ERROR_TITLES[known], "text": text or ERROR_TEXTS[known],
    }, status=status)  # fmt: skip


def _csrf_exempt(request: web.Request) -> bool:
    return request.match_info.route.name in CSRF_EXEMPT_ROUTES


def _wants_html(request: web.Request) -> bool:
    return "text/html" in request.headers.get("Accept", "")


@web.middleware
async def web_middleware(request: web.Request, handler) -> web.StreamResponse:
    if not is_web_path(request.path):
        return await handler(request)
    lang = negotiate(request.cookies.get(LANGUAGE_COOKIE), request.headers.get("Accept-Language"))
    translators = request.app[translators_key]
    request[translator_rkey] = translators.get(lang) or translators[DEFAULT_LANGUAGE]
    await identify(request)
    unmatched = request.match_info.http_exception is not None
    try:
        if request.method == "POST" and not unmatched and not _csrf_exempt(request):
            form = await read_form(request)  # bounded, for forms that carry photos
            if not csrf_valid(request, form.get(CSRF_FIELD)):
                raise web.HTTPForbidden(reason="CSRF token missing or wrong")
        response = await handler(request)
    except web.HTTPException as error:
        if error.status < 400:
            set_cookies(request, error)
            _secure_headers(request, error)
            raise
        if unmatched and not _wants_html(request):
            raise
        response = await error_page(request, error.status, title=getattr(error, "page_title", None),
                                    text=getattr(error, "page_text", None))  # fmt: skip
    except ConnectionResetError:  # the client went away before its request was read
        log.info("request abandoned by the client",
                 extra={"method": request.method, "path": request.path})  # fmt: skip
        return web.Response(status=400, text="incomplete request")
    except TrocError as error:  # a rule said no (403, 404, 409), or the database is busy (503)
        status = status_for(error)
        if status >= 500:
            log.warning("cannot serve %s %s: %s", request.method, request.path, error.code)
        response = await error_page(request, status)
        if status in RETRY_AFTER_S:
            response.headers["Retry-After"] = str(RETRY_AFTER_S[status])
    except Exception:  # noqa: BLE001 - the resident sees a page, the operator a log line
        log.exception("unexpected error on %s %s", request.method, request.path)
        response = await error_page(request, 500)
    set_cookies(request, response)
    _secure_headers(request, response)
    travel(request, response, request.app[static_versions_key])
    return response


def _secure_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if response.content_type == "text/html" or isinstance(response, web.HTTPException):
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        private = request.get(member_rkey) is not None or request.method == "POST"
        response.headers.setdefault("Cache-Control", "private, no-store" if private else "no-cache")
    if request.app[settings_key].public_url.startswith("https://"):
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
