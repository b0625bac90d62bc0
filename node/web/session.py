"""Who is asking: session cookies, CSRF tokens, password hashing, login throttle.

The session cookie holds a random token; the database keeps only its SHA-256.
Every form carries a CSRF token, an HMAC of a random per-browser cookie under a
secret derived from the node key (deterministic, so several web workers and a
restart agree). Passwords are hashed with argon2id in a worker thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets

from aiohttp import web
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from node.keys import clock_key, db_key, settings_key
from node.web.common import client_address
from node.web.keys import (
    csrf_cookie_rkey,
    csrf_cookie_sent_rkey,
    csrf_secret_key,
    member_rkey,
    password_hasher_key,
    reader_key,
)
from protocol.identity import NodeKey, b64url_encode
from storage import residents

SESSION_COOKIE = "troc_session"
CSRF_COOKIE = "troc_csrf"
CSRF_FIELD = "csrf"
SESSION_LIFETIME_S = 30 * 24 * 3600
# Failed logins allowed in LOGIN_WINDOW_S, per account and per address.
LOGIN_WINDOW_S = 15 * 60
LOGIN_MAX_FAILURES_PER_ACCOUNT = 5
LOGIN_MAX_FAILURES_PER_ADDRESS = 20


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


def _token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _now(request: web.Request) -> int:
    return int(request.app[clock_key]())


async def identify(request: web.Request) -> None:
    """Set request[member_rkey] from the session cookie, and the CSRF cookie's value."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    request[csrf_cookie_sent_rkey] = 16 <= len(cookie) <= 64
    request[csrf_cookie_rkey] = cookie if request[csrf_cookie_sent_rkey] else secrets.token_urlsafe(24)
    request[member_rkey] = None
    token = request.cookies.get(SESSION_COOKIE)
    if token and len(token) <= 64:
        request[member_rkey] = await request.app[reader_key].run(
            residents.session_member, _token_hash(token), _now(request)
        )


def _secure(request: web.Request) -> bool:
    return request.app[settings_key].public_url.startswith("https://")


def set_cookies(request: web.Request, response: web.StreamResponse) -> None:
    if not request[csrf_cookie_sent_rkey]:
        response.set_cookie(CSRF_COOKIE, request[csrf_cookie_rkey], httponly=True,
                            samesite="Lax", secure=_secure(request), path="/")  # fmt: skip


async def start_session(request: web.Request, response: web.StreamResponse, member_id: int) -> None:
    token = secrets.token_urlsafe(32)
    await residents.create_session(request.app[db_key], member_id, _token_hash(token),
                                   now=_now(request), lifetime_s=SESSION_LIFETIME_S)  # fmt: skip
    response.set_cookie(SESSION_COOKIE, token, max_age=SESSION_LIFETIME_S, httponly=True,
                        samesite="Lax", secure=_secure(request), path="/")  # fmt: skip


async def end_session(request: web.Request, response: web.StreamResponse) -> None:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await residents.end_session(request.app[db_key], _token_hash(token))
    response.del_cookie(SESSION_COOKIE, path="/")


def current_token_hash(request: web.Request) -> bytes:
    return _token_hash(request.cookies.get(SESSION_COOKIE, ""))


# --- Passwords ---------------------------------------------------------------


async def hash_password(request: web.Request, password: str) -> str:
    return await hash_password_in(request.app, password)


async def hash_password_in(app: web.Application, password: str) -> str:
    """A password's hash, with the node application's hasher (also for the admin API)."""
    hasher: PasswordHasher = app[password_hasher_key]
    return await asyncio.get_running_loop().run_in_executor(None, hasher.hash, password)


async def password_matches(request: web.Request, stored_hash: str, password: str) -> bool:
    hasher: PasswordHasher = request.app[password_hasher_key]

    def verify() -> bool:
        try:
            return hasher.verify(stored_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.get_running_loop().run_in_executor(None, verify)


# --- Login throttle ----------------------------------------------------------


def _throttle_keys(request: web.Request, handle: str) -> tuple[str, str]:
    return f"account:{handle[:64]}", f"address:{client_address(request)}"


async def login_blocked(request: web.Request, handle: str) -> bool:
    account, address = _throttle_keys(request, handle)
    failures = await residents.recent_failures(
        request.app[db_key], [account, address], now=_now(request), window_s=LOGIN_WINDOW_S
    )
    return (failures.get(account, 0) >= LOGIN_MAX_FAILURES_PER_ACCOUNT
            or failures.get(address, 0) >= LOGIN_MAX_FAILURES_PER_ADDRESS)  # fmt: skip


async def login_failed(request: web.Request, handle: str) -> None:
    await residents.record_failure(request.app[db_key], list(_throttle_keys(request, handle)),
                                   now=_now(request), window_s=LOGIN_WINDOW_S)  # fmt: skip


async def login_succeeded(request: web.Request, handle: str) -> None:
    account, _address = _throttle_keys(request, handle)
    await residents.clear_failures(request.app[db_key], [account])
