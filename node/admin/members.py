"""The admin API's member endpoints: the association's residents, for its operators.

    GET    /v1/members?state=S               every member (or those in state S), with their login
    POST   /v1/members/{name}/approve        pending -> active: they can log in
    POST   /v1/members/{name}/suspend        -> suspended, and logged out everywhere
    POST   /v1/members/{name}/unsuspend      suspended -> active
    POST   /v1/members/{name}/reset-password a new temporary password, shown once

``name`` is the member's public handle or, failing that, their login (what a
resident at the desk may remember). The rules are node.accounts': a
suspended member may log in again to read, but cannot post or answer
(node.web.common.require_active). A reset password ends every session of the
member; they choose their own on the web's password page, with the temporary
one as the current password. A change that would do nothing (approving an
active member...) is a 409 that says why.
"""

from __future__ import annotations

from aiohttp import web

from node import accounts
from node.keys import db_key, main_app_key
from protocol.errors import ValidationError
from storage import residents
from storage.residents import Member

routes = web.RouteTableDef()


def member_json(member: Member, login: str | None = None) -> dict:
    answer = {"handle": member.handle, "display_name": member.display_name,
              "state": member.state, "created_at": member.created_at}  # fmt: skip
    return answer if login is None else {**answer, "login": login}


def _listed(conn, state: str | None):
    return residents.list_members(conn, state), residents.logins(conn)


def _handle(request: web.Request) -> str:
    return request.match_info["handle"].lower()


@routes.get("/v1/members")
async def list_members(request: web.Request) -> web.Response:
    state = request.query.get("state")
    if state is not None and state not in residents.MEMBER_STATES:
        raise ValidationError(f"must be one of {', '.join(residents.MEMBER_STATES)}", field="state")
    listed, logins = await request.app[main_app_key][db_key].read(_listed, state)
    return web.json_response([member_json(m, logins.get(m.id)) for m in listed])


async def _change(request: web.Request, change) -> tuple[Member, int]:
    return await accounts.change_state(request.app[main_app_key], _handle(request), change)


@routes.post("/v1/members/{handle}/approve")
async def approve(request: web.Request) -> web.Response:
    member, _ = await _change(request, accounts.APPROVE)
    return web.json_response(member_json(member))


@routes.post("/v1/members/{handle}/suspend")
async def suspend(request: web.Request) -> web.Response:
    member, ended = await _change(request, accounts.SUSPEND)
    return web.json_response({**member_json(member), "sessions_ended": ended})


@routes.post("/v1/members/{handle}/unsuspend")
async def unsuspend(request: web.Request) -> web.Response:
    member, _ = await _change(request, accounts.UNSUSPEND)
    return web.json_response(member_json(member))


@routes.post("/v1/members/{handle}/reset-password")
async def reset_password(request: web.Request) -> web.Response:
    member, password, ended = await accounts.reset_password(request.app[main_app_key],
                                                            _handle(request))  # fmt: skip
    return web.json_response({**member_json(member), "password": password,
                              "sessions_ended": ended})  # fmt: skip
