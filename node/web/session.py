"""Who is asking: the session cookie and the CSRF token.

The session cookie holds a random token (node.accounts keeps only its
SHA-256). Every form carries a CSRF token, an HMAC of a random per-browser
cookie under a secret derived from the node key (deterministic, so several
web workers and a restart agree).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from aiohttp import web

from node import accounts
from node.accounts import SESSION_LIFETIME_S
from node.keys import settings_key
from node.web.keys import (
    csrf_cookie_rkey,
    csrf_cookie_sent_rkey,
    csrf_secret_key,
    member_rkey,
)
from protocol.identity import NodeKey, b64url_encode

SESSION_COOKIE = "troc_session"
CSRF_COOKIE = "troc_csrf"
CSRF_FIELD = "csrf"


def csrf_secret(key: NodeKey) -> bytes:
    """A secret only this node can compute (Ed25519 signatures are deterministic)."""
    return hashlib.sha256(key.sign(b"troc-web-csrf-secret-v1")).digest()


def csrf_token(request: web.Request) -> str:
    mac = hmac.new(request.app[csrf_secret_key], request[csrf_cookie_rkey].encode(), "sha256")
    return b64url_encode(mac.digest())


def csrf_valid(request: web.Request, submitted: object) -> bool:
    if not request[csrf_cookie_sent_rkey] or not isinstance(submitted, str):
        return False
    return hmac.compare_digest(submitted.encode(), csrf_token(request).encode())


async def identify(request: web.Request) -> None:
    """Set request[member_rkey] from the session cookie, and the CSRF cookie's value."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    request[csrf_cookie_sent_rkey] = 16 <= len(cookie) <= 64
    request[csrf_cookie_rkey] = cookie if request[csrf_cookie_sent_rkey] else secrets.token_urlsafe(24)
    request[member_rkey] = None
    token = request.cookies.get(SESSION_COOKIE)
    if token and len(token) <= 64:
        request[member_rkey] = await accounts.session_member(request.app, token)


def _secure(request: web.Request) -> bool:
    return request.app[settings_key].public_url.startswith("https://")


def set_cookies(request: web.Request, response: web.StreamResponse) -> None:
    if not request[csrf_cookie_sent_rkey]:
        response.set_cookie(CSRF_COOKIE, request[csrf_cookie_rkey], httponly=True,
                            samesite="Lax", secure=_secure(request), path="/")  # fmt: skip


async def start_session(request: web.Request, response: web.StreamResponse, member_id: int) -> None:
    token = await accounts.start_session(request.app, member_id)
    response.set_cookie(SESSION_COOKIE, token, max_age=SESSION_LIFETIME_S, httponly=True,
                        samesite="Lax", secure=_secure(request), path="/")  # fmt: skip


async def end_session(request: web.Request, response: web.StreamResponse) -> None:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await accounts.end_session(request.app, token)
    response.del_cookie(SESSION_COOKIE, path="/")


def session_token(request: web.Request) -> str:
    return request.cookies.get(SESSION_COOKIE, "")
