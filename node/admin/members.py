"""The admin API's member endpoints: the association's residents, for its operators.

    GET    /v1/members?state=S                 every member (or those in state S)
    POST   /v1/members/{handle}/approve        pending -> active: they can log in
    POST   /v1/members/{handle}/suspend        -> suspended, and logged out everywhere
    POST   /v1/members/{handle}/unsuspend      suspended -> active
    POST   /v1/members/{handle}/reset-password a new temporary password, shown once

A suspended member may log in again to read, but cannot post or answer
(node.web.common.require_active). A reset password ends every session of the
member; they choose their own on the web's password page, with the temporary
one as the current password. A change that would do nothing (approving an
active member...) is a 409 that says why.
"""

from __future__ import annotations

import logging
import secrets

from aiohttp import web

from node.keys import db_key, main_app_key
from node.web.session import hash_password_in
from protocol.errors import ValidationError
from storage import residents
from storage.errors import Conflict, NotFound
from storage.residents import Member

log = logging.getLogger("troc.members")

routes = web.RouteTableDef()

# Easy to read aloud or copy from paper: no 0/o, 1/l/i. 16 characters of 31
# give about 79 bits, far beyond what the login throttle lets anyone try.
TEMPORARY_PASSWORD_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
TEMPORARY_PASSWORD_GROUPS = 4
TEMPORARY_PASSWORD_GROUP_CHARS = 4


def temporary_password() -> str:
    return "-".join(
        "".join(secrets.choice(TEMPORARY_PASSWORD_ALPHABET)
                for _ in range(TEMPORARY_PASSWORD_GROUP_CHARS))
        for _ in range(TEMPORARY_PASSWORD_GROUPS)
    )  # fmt: skip


def member_json(member: Member) -> dict:
    return {"handle": member.handle, "display_name": member.display_name,
            "state": member.state, "created_at": member.created_at}  # fmt: skip


async def _member(request: web.Request) -> Member:
    handle = request.match_info["handle"].lower()
    member = await residents.member_by_handle(request.app[main_app_key][db_key], handle)
    if member is None:
        raise NotFound(f"no member with the handle {handle!r}")
    return member


async def _change_state(request: web.Request, allowed_from: tuple[str, ...], to: str) -> Member:
    member = await _member(request)
    if member.state == to:
        raise Conflict(f"{member.handle} is already {to}")
    if member.state not in allowed_from:
        raise Conflict(f"{member.handle} is {member.state}, not {' or '.join(allowed_from)}")
    await residents.set_member_state(request.app[main_app_key][db_key], member.handle, to)
    log.info("member state changed", extra={"handle": member.handle, "state": to})
    return await residents.member_by_handle(request.app[main_app_key][db_key], member.handle)


@routes.get("/v1/members")
async def list_members(request: web.Request) -> web.Response:
    state = request.query.get("state")
    if state is not None and state not in residents.MEMBER_STATES:
        raise ValidationError(f"must be one of {', '.join(residents.MEMBER_STATES)}", field="state")
    listed = await residents.list_members(request.app[main_app_key][db_key], state)
    return web.json_response([member_json(m) for m in listed])


@routes.post("/v1/members/{handle}/approve")
async def approve(request: web.Request) -> web.Response:
    member = await _change_state(request, (residents.PENDING,), residents.ACTIVE)
    return web.json_response(member_json(member))


@routes.post("/v1/members/{handle}/suspend")
async def suspend(request: web.Request) -> web.Response:
    allowed = (residents.ACTIVE, residents.PENDING)
    member = await _change_state(request, allowed, residents.SUSPENDED)
    ended = await residents.end_member_sessions(request.app[main_app_key][db_key], member.id)
    return web.json_response({**member_json(member), "sessions_ended": ended})


@routes.post("/v1/members/{handle}/unsuspend")
async def unsuspend(request: web.Request) -> web.Response:
    member = await _change_state(request, (residents.SUSPENDED,), residents.ACTIVE)
    return web.json_response(member_json(member))


@routes.post("/v1/members/{handle}/reset-password")
async def reset_password(request: web.Request) -> web.Response:
    app = request.app[main_app_key]
    member, password = await _member(request), temporary_password()
    await residents.set_password_hash(app[db_key], member.id, await hash_password_in(app, password))
    ended = await residents.end_member_sessions(app[db_key], member.id)
    log.info("member password reset", extra={"handle": member.handle})  # never the password
    return web.json_response({**member_json(member), "password": password,
                              "sessions_ended": ended})  # fmt: skip
