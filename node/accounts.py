"""Members, the feature: signing up, logging in, sessions, passwords, profiles, their states.

The web view (node.web.accounts, node.web.profile, node.web.session) and the
admin API (node.admin.members) call these; the rules are written here, once:

- an account is active at once when registration is ``open``, pending the
  association's approval otherwise; a pending member cannot log in;
- failed logins are limited per account and per address within a window
  (``LOGIN_*``); a failed login costs as long whether the handle exists or
  not (no account oracle);
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
import logging
import secrets
from dataclasses import dataclass

from aiohttp import web
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.engine import Connection

from node.clock import now
from node.keys import db_key, password_hasher_key, settings_key
from storage import residents
from storage.errors import Conflict, NotFound
from storage.residents import Member, Profile

log = logging.getLogger("troc.members")

SESSION_LIFETIME_S = 30 * 24 * 3600
# Failed logins allowed in LOGIN_WINDOW_S, per account and per address.
LOGIN_WINDOW_S = 15 * 60
LOGIN_MAX_FAILURES_PER_ACCOUNT = 5
LOGIN_MAX_FAILURES_PER_ADDRESS = 20
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


# --- Signing up, logging in -----------------------------------------------------------


async def sign_up(app: web.Application, *, handle: str, display_name: str,
                  password: str) -> Member:  # fmt: skip
    """A new member, active or pending per the registration policy; Conflict if the handle is taken."""
    state = residents.ACTIVE if app[settings_key].registration == "open" else residents.PENDING
    password_hash = await hash_password(app, password)
    return await app[db_key].write(residents.create_member, handle=handle,
                                   display_name=display_name, password_hash=password_hash,
                                   state=state, now=now(app))  # fmt: skip


@dataclass(frozen=True)
class Login:
    """What a login attempt came to: a member (check ``state``), or why not."""

    member: Member | None = None
    throttled: bool = False


def _throttle_keys(handle: str, address: str) -> list[str]:
    return [f"account:{handle[:64]}", f"address:{address}"]


async def log_in(app: web.Application, handle: str, password: str, address: str) -> Login:
    """Check a handle and password, within the limits on failures."""
    db, at = app[db_key], now(app)
    keys = _throttle_keys(handle, address)
    failures = await db.read(residents.recent_failures, keys, now=at, window_s=LOGIN_WINDOW_S)
    if (failures.get(keys[0], 0) >= LOGIN_MAX_FAILURES_PER_ACCOUNT
            or failures.get(keys[1], 0) >= LOGIN_MAX_FAILURES_PER_ADDRESS):  # fmt: skip
        return Login(throttled=True)
    found = await db.read(residents.credentials, handle) if handle else None
    if found is None:
        await hash_password(app, password)  # as long as a check: no account oracle
    if found is None or not await password_matches(app, found[1], password):
        await db.write(residents.record_failure, keys, now=at, window_s=LOGIN_WINDOW_S)
        return Login()
    await db.write(residents.clear_failures, keys[:1])
    return Login(found[0])


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


def _change_state(conn: Connection, handle: str, allowed_from: tuple[str, ...],
                  to: str) -> tuple[Member, int]:  # fmt: skip
    member = residents.member_by_handle(conn, handle)
    if member is None:
        raise NotFound(f"no member with the handle {handle!r}")
    if member.state == to:
        raise Conflict(f"{member.handle} is already {to}")
    if member.state not in allowed_from:
        raise Conflict(f"{member.handle} is {member.state}, not {' or '.join(allowed_from)}")
    residents.set_member_state(conn, member.handle, to)
    ended = residents.end_member_sessions(conn, member.id) if to == residents.SUSPENDED else 0
    return residents.member_by_handle(conn, member.handle), ended


async def change_state(app: web.Application, handle: str, change) -> tuple[Member, int]:
    """Approve, suspend or unsuspend a member; the member, and how many sessions ended."""
    allowed_from, to = change
    member, ended = await app[db_key].write(_change_state, handle, allowed_from, to)
    log.info("member state changed", extra={"handle": member.handle, "state": to})
    return member, ended


def _reset(conn: Connection, handle: str, password_hash: str) -> tuple[Member, int]:
    member = residents.member_by_handle(conn, handle)
    if member is None:
        raise NotFound(f"no member with the handle {handle!r}")
    residents.set_password_hash(conn, member.id, password_hash)
    return member, residents.end_member_sessions(conn, member.id)


async def reset_password(app: web.Application, handle: str) -> tuple[Member, str, int]:
    """A new temporary password, to give the member; every session of theirs ends."""
    password = temporary_password()
    member, ended = await app[db_key].write(_reset, handle, await hash_password(app, password))
    log.info("member password reset", extra={"handle": member.handle})  # never the password
    return member, password, ended
