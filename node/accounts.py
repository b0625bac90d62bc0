"""Members, the feature: signing up, logging in, sessions, passwords, profiles, their states.

The web view (node.web.accounts, node.web.profile, node.web.session) and the
admin API (node.admin.members) call these; the rules are written here, once:

- an account is active at once when registration is ``open``, pending the
  association's approval otherwise; a pending member cannot log in;
- a member logs in with a private login name, never with their public
  handle (which travels with every annonce): the handle is made from their
  name and a few digits at sign-up (``public_handle``);
- failed logins are limited without letting a stranger lock a resident out
  (``log_in``, docs/operating.md "Logging in"): one account from one address
  is refused after ``LOGIN_MAX_FAILURES_PER_PAIR`` failures in the window;
  an account failing from everywhere, or an address failing on every
  account, is only slowed down (``LOGIN_SLOWDOWN_S`` per attempt, a few at
  once); a browser the member logged in from before carries a device token
  (an HMAC of the member and their password hash) and is neither slowed nor
  refused for others' failures, only for its own. Each attempt is counted
  before it is checked, atomically, so no more than the limit are ever
  checked; a failed login costs as long whether the login exists or not (no
  account oracle);
- passwords are hashed with argon2id, off the event loop;
- a session is a random token of which only the SHA-256 is kept;
- a suspended member is logged out everywhere and may read, not post or
  answer; changing one's password ends one's other sessions, a password reset
  by the operator ends them all;
- the state changes an operator may make: approve (pending → active), suspend
  (active or pending → suspended), unsuspend (suspended → active).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import secrets
import unicodedata
from dataclasses import dataclass

from aiohttp import web
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from node.clock import now
from node.keys import (
    db_key,
    login_slowdowns_key,
    node_key_key,
    password_hasher_key,
    settings_key,
)
from protocol import limits
from protocol.identity import b64url_encode
from storage import residents
from storage.db import Connection
from storage.errors import Conflict, NotFound
from storage.residents import Member, Profile

log = logging.getLogger("troc.members")

SESSION_LIFETIME_S = 30 * 24 * 3600
# Failed logins within LOGIN_WINDOW_S: refused for one account from one
# address (or from one known device), slowed down beyond the others.
LOGIN_WINDOW_S = 15 * 60
LOGIN_MAX_FAILURES_PER_PAIR = 5
LOGIN_MAX_FAILURES_PER_DEVICE = 5
LOGIN_MAX_FAILURES_PER_ACCOUNT = 5
LOGIN_MAX_FAILURES_PER_ADDRESS = 20
LOGIN_SLOWDOWN_S = 3.0  # added to each slowed attempt
LOGIN_MAX_SLOWED_PER_ACCOUNT = 2  # slowed attempts waiting at once on one account; more: refused
DEVICE_LIFETIME_S = 365 * 86400
HANDLE_DIGITS = 4
HANDLE_STEM_CHARS = limits.MAX_HANDLE_CHARS - HANDLE_DIGITS - 1
# Easy to read aloud or copy from paper: no 0/o, 1/l/i. 16 characters of 31
# give about 79 bits, far beyond what the login throttle lets anyone try.
TEMPORARY_PASSWORD_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
TEMPORARY_PASSWORD_GROUPS = 4
TEMPORARY_PASSWORD_GROUP_CHARS = 4


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


# --- Passwords ----------------------------------------------------------------------


async def hash_password(app: web.Application, password: str) -> str:
    hasher: PasswordHasher = app[password_hasher_key]
    return await asyncio.to_thread(hasher.hash, password)


async def password_matches(app: web.Application, stored_hash: str, password: str) -> bool:
    hasher: PasswordHasher = app[password_hasher_key]

    def verify() -> bool:
        try:
            return hasher.verify(stored_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(verify)


def temporary_password() -> str:
    return "-".join(
        "".join(secrets.choice(TEMPORARY_PASSWORD_ALPHABET)
                for _ in range(TEMPORARY_PASSWORD_GROUP_CHARS))
        for _ in range(TEMPORARY_PASSWORD_GROUPS)
    )  # fmt: skip


# --- Signing up ---------------------------------------------------------------------------


def handle_stem(display_name: str) -> str:
    """The name as a handle: lower case, no accents, words joined by a hyphen."""
    folded = unicodedata.normalize("NFKD", display_name.lower())
    ascii_only = "".join(c for c in folded if not unicodedata.combining(c) and c.isascii())
    words = re.findall(r"[a-z0-9]+", ascii_only)
    return "-".join(words)[:HANDLE_STEM_CHARS].strip("-") or "membre"


def public_handle(display_name: str) -> str:
    """A public handle for a new member: their name and a few random digits."""
    digits = "".join(secrets.choice("0123456789") for _ in range(HANDLE_DIGITS))
    return f"{handle_stem(display_name)}-{digits}"


def _create(conn: Connection, *, login: str, display_name: str, password_hash: str,
            state: str, at: int) -> Member:  # fmt: skip
    for _ in range(20):  # a handle taken already: other digits
        handle = public_handle(display_name)
        if not residents.handle_taken(conn, handle):
            return residents.create_member(conn, handle=handle, login=login,
                                           display_name=display_name, password_hash=password_hash,
                                           state=state, now=at)  # fmt: skip
    raise Conflict("no free handle for this name")


async def sign_up(app: web.Application, *, login: str, display_name: str,
                  password: str) -> tuple[Member, str]:  # fmt: skip
    """A new member, active or pending per the registration policy, and this browser's device
    token; Conflict if the login is taken."""
    state = residents.ACTIVE if app[settings_key].registration == "open" else residents.PENDING
    password_hash = await hash_password(app, password)
    member = await app[db_key].write(_create, login=login, display_name=display_name,
                                     password_hash=password_hash, state=state, at=now(app))  # fmt: skip
    return member, device_token(app, member.id, password_hash)


# --- Logging in -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Login:
    """What a login attempt came to: a member (check ``state``), or why not."""

    member: Member | None = None
    throttled: bool = False
    device_token: str | None = None  # for the browser, after a success


def device_secret(app: web.Application) -> bytes:
    """A secret only this node can compute (Ed25519 signatures are deterministic)."""
    return hashlib.sha256(app[node_key_key].sign(b"troc-web-device-secret-v1")).digest()


def device_token(app: web.Application, member_id: int, password_hash: str) -> str:
    """The token of a browser the member logged in from: void once the password changes."""
    mac = hmac.new(device_secret(app), f"{member_id}:{password_hash}".encode(), "sha256")
    return f"{member_id}.{b64url_encode(mac.digest()[:16])}"


def _known_device(app: web.Application, token: str | None, member: Member | None,
                  password_hash: str | None) -> bool:  # fmt: skip
    if not token or member is None or password_hash is None or len(token) > 64:
        return False
    expected = device_token(app, member.id, password_hash)
    return hmac.compare_digest(token.encode(), expected.encode())


def _keys(login: str, address: str, device: str | None) -> dict[str, str]:
    if device is not None:
        return {"device": f"device:{device[:64]}"}
    login = login[:64]
    return {"pair": f"pair:{login}|{address}", "account": f"account:{login}",
            "address": f"address:{address}"}  # fmt: skip


async def log_in(app: web.Application, login: str, password: str, address: str,
                 device: str | None = None) -> Login:  # fmt: skip
    """Check a login name and password, within the limits on failures (see the module)."""
    db, at = app[db_key], now(app)
    found = await db.read(residents.credentials, login) if login else None
    member, stored_hash = found if found else (None, None)
    known = _known_device(app, device, member, stored_hash)
    keys = _keys(login, address, device if known else None)
    counts = await db.write(residents.count_attempt, list(keys.values()), now=at,
                            window_s=LOGIN_WINDOW_S)  # fmt: skip
    count = {name: counts[key] for name, key in keys.items()}
    if count.get("pair", 0) > LOGIN_MAX_FAILURES_PER_PAIR:
        return Login(throttled=True)
    if count.get("device", 0) > LOGIN_MAX_FAILURES_PER_DEVICE:
        return Login(throttled=True)
    if (count.get("account", 0) > LOGIN_MAX_FAILURES_PER_ACCOUNT
            or count.get("address", 0) > LOGIN_MAX_FAILURES_PER_ADDRESS):  # fmt: skip
        if not await _slowed(app, login):
            return Login(throttled=True)
    if stored_hash is None:
        await hash_password(app, password)  # as long as a check: no account oracle
        return Login()
    if not await password_matches(app, stored_hash, password):
        return Login()
    cleared = [keys[name] for name in ("pair", "account", "device") if name in keys]
    lowered = [keys["address"]] if "address" in keys else []
    await db.write(residents.forgive_attempt, cleared, lowered)
    return Login(member, device_token=device_token(app, member.id, stored_hash))


async def _slowed(app: web.Application, login: str) -> bool:
    """Wait LOGIN_SLOWDOWN_S; False (refuse) if too many attempts wait on this login already."""
    waiting = app[login_slowdowns_key]
    if waiting[login] >= LOGIN_MAX_SLOWED_PER_ACCOUNT:
        return False
    waiting[login] += 1
    try:
        await asyncio.sleep(LOGIN_SLOWDOWN_S)
    finally:
        waiting[login] -= 1
        if waiting[login] <= 0:
            del waiting[login]
    return True


# --- Sessions ---------------------------------------------------------------------------


async def start_session(app: web.Application, member_id: int) -> str:
    """A new session for the member; its token, for the cookie."""
    token = secrets.token_urlsafe(32)
    await app[db_key].write(residents.create_session, member_id, token_hash(token),
                            now=now(app), lifetime_s=SESSION_LIFETIME_S)  # fmt: skip
    return token


async def session_member(app: web.Application, token: str) -> Member | None:
    return await app[db_key].read(residents.session_member, token_hash(token), now(app))


async def end_session(app: web.Application, token: str) -> None:
    await app[db_key].write(residents.end_session, token_hash(token))


# --- The member's own account ---------------------------------------------------------


async def check_password(app: web.Application, member: Member, password: str) -> bool:
    return await password_matches(app, await app[db_key].read(residents.password_hash_of,
                                                              member.id), password)  # fmt: skip


def _new_password(conn: Connection, member_id: int, password_hash: str, keep: bytes) -> None:
    residents.set_password_hash(conn, member_id, password_hash)
    residents.end_other_sessions(conn, member_id, keep=keep)


async def change_password(app: web.Application, member: Member, new: str, keep_token: str) -> None:
    """A new password; the member's other sessions end."""
    await app[db_key].write(_new_password, member.id, await hash_password(app, new),
                            token_hash(keep_token))  # fmt: skip


async def profile_of(app: web.Application, member: Member) -> Profile:
    return await app[db_key].read(residents.get_profile, member.id)


async def save_profile(app: web.Application, member: Member, display_name: str,
                       profile: Profile) -> None:  # fmt: skip
    await app[db_key].write(residents.save_profile, member.id, display_name=display_name,
                            profile=profile, now=now(app))  # fmt: skip


# --- The operator's decisions -----------------------------------------------------------

APPROVE = ((residents.PENDING,), residents.ACTIVE)
SUSPEND = ((residents.ACTIVE, residents.PENDING), residents.SUSPENDED)
UNSUSPEND = ((residents.SUSPENDED,), residents.ACTIVE)


def _named(conn: Connection, name: str) -> Member:
    member = residents.member_named(conn, name)
    if member is None:
        raise NotFound(f"no member with the handle or login {name!r}")
    return member


def _change_state(conn: Connection, name: str, allowed_from: tuple[str, ...],
                  to: str) -> tuple[Member, int]:  # fmt: skip
    member = _named(conn, name)
    if member.state == to:
        raise Conflict(f"{name} is already {to}")
    if member.state not in allowed_from:
        raise Conflict(f"{name} is {member.state}, not {' or '.join(allowed_from)}")
    residents.set_member_state(conn, member.handle, to)
    ended = residents.end_member_sessions(conn, member.id) if to == residents.SUSPENDED else 0
    return residents.member_by_handle(conn, member.handle), ended


async def change_state(app: web.Application, name: str, change) -> tuple[Member, int]:
    """Approve, suspend or unsuspend a member (by handle or login); the member, sessions ended."""
    allowed_from, to = change
    member, ended = await app[db_key].write(_change_state, name, allowed_from, to)
    log.info("member state changed", extra={"handle": member.handle, "state": to})
    return member, ended


def _reset(conn: Connection, name: str, password_hash: str) -> tuple[Member, int]:
    member = _named(conn, name)
    residents.set_password_hash(conn, member.id, password_hash)
    return member, residents.end_member_sessions(conn, member.id)


async def reset_password(app: web.Application, name: str) -> tuple[Member, str, int]:
    """A new temporary password, to give the member; every session of theirs ends."""
    password = temporary_password()
    member, ended = await app[db_key].write(_reset, name, await hash_password(app, password))
    log.info("member password reset", extra={"handle": member.handle})  # never the password
    return member, password, ended
