"""Who is asking: the session cookie, the CSRF token, and the browser's device token.

The session cookie holds a random token (node.accounts keeps only its
SHA-256). Every form carries a CSRF token: an HMAC, under a secret derived
from the node key (deterministic, so several web workers and a restart
agree), of a random per-browser cookie *and* of the session cookie the
browser sends, so a token made for one session (or for no session) is worth
nothing in another. The device cookie tells node.accounts that this browser
logged in before (its token is void once the password changes).

Cookies are HttpOnly and SameSite=Lax; where the node's URL is https they are
Secure and carry the ``__Host-`` prefix (no Domain, Path=/, never sent over
plain HTTP nor set by a sibling domain).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from aiohttp import web

from node import accounts
from node.accounts import DEVICE_LIFETIME_S, SESSION_LIFETIME_S
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
DEVICE_COOKIE = "troc_device"
HOST_PREFIX = "__Host-"
CSRF_FIELD = "csrf"
MAX_COOKIE_CHARS = 128


def _secure(request: web.Request) -> bool:
    return request.app[settings_key].public_url.startswith("https://")


def cookie_name(request: web.Request, name: str) -> str:
    """The cookie's name on this node: ``__Host-`` prefixed where the URL is https."""
    return HOST_PREFIX + name if _secure(request) else name


def _cookie(request: web.Request, name: str) -> str:
    value = request.cookies.get(cookie_name(request, name), "")
    return value if len(value) <= MAX_COOKIE_CHARS else ""


def _set(request: web.Request, response: web.StreamResponse, name: str, value: str,
         max_age: int | None = None) -> None:  # fmt: skip
    response.set_cookie(cookie_name(request, name), value, max_age=max_age, httponly=True,
                        samesite="Lax", secure=_secure(request), path="/")  # fmt: skip


def csrf_secret(key: NodeKey) -> bytes:
    """A secret only this node can compute (Ed25519 signatures are deterministic)."""
    return hashlib.sha256(key.sign(b"troc-web-csrf-secret-v1")).digest()


def csrf_token(request: web.Request) -> str:
    """The token of this browser's forms, for the session it sends (none: an empty one)."""
    bound = request[csrf_cookie_rkey] + "|" + hashlib.sha256(
        _cookie(request, SESSION_COOKIE).encode()).hexdigest()  # fmt: skip
    mac = hmac.new(request.app[csrf_secret_key], bound.encode(), "sha256")
    return b64url_encode(mac.digest())


def csrf_valid(request: web.Request, submitted: object) -> bool:
    if not request[csrf_cookie_sent_rkey] or not isinstance(submitted, str):
        return False
    return hmac.compare_digest(submitted.encode(), csrf_token(request).encode())


async def identify(request: web.Request) -> None:
    """Set request[member_rkey] from the session cookie, and the CSRF cookie's value."""
    cookie = _cookie(request, CSRF_COOKIE)
    request[csrf_cookie_sent_rkey] = 16 <= len(cookie) <= 64
    request[csrf_cookie_rkey] = cookie if request[csrf_cookie_sent_rkey] else secrets.token_urlsafe(24)
    request[member_rkey] = None
    token = _cookie(request, SESSION_COOKIE)
    if token and len(token) <= 64:
        request[member_rkey] = await accounts.session_member(request.app, token)


def set_cookies(request: web.Request, response: web.StreamResponse) -> None:
    if not request[csrf_cookie_sent_rkey]:
        _set(request, response, CSRF_COOKIE, request[csrf_cookie_rkey])


async def start_session(request: web.Request, response: web.StreamResponse, member_id: int,
                        device: str | None = None) -> None:  # fmt: skip
    """A new session; ``device``: the browser's device token, kept for its next logins."""
    token = await accounts.start_session(request.app, member_id)
    _set(request, response, SESSION_COOKIE, token, SESSION_LIFETIME_S)
    if device is not None:
        _set(request, response, DEVICE_COOKIE, device, DEVICE_LIFETIME_S)


async def end_session(request: web.Request, response: web.StreamResponse) -> None:
    token = _cookie(request, SESSION_COOKIE)
    if token:
        await accounts.end_session(request.app, token)
    response.del_cookie(cookie_name(request, SESSION_COOKIE), path="/")


def session_token(request: web.Request) -> str:
    return _cookie(request, SESSION_COOKIE)


def device_cookie(request: web.Request) -> str | None:
    return _cookie(request, DEVICE_COOKIE) or None
