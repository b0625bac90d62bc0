"""The admin API's member endpoints: the association's residents, for its operators.

    GET    /v1/members?state=S               every member (or those in state S), with their login
    POST   /v1/members/{name}/approve        pending -> active: they can log in
    POST   /v1/members/{name}/suspend        -> suspended, and logged out everywhere
    POST   /v1/members/{name}/unsuspend      suspended -> active
    POST   /v1/members/{name}/reset-password a new temporary password, shown once
    POST   /v1/members/{name}/delete         the account deleted for good (node.erasure)
    POST   /v1/members/{name}/grant-coordinator   the member keeps the association's desk
    POST   /v1/members/{name}/revoke-coordinator  no longer; says who is left without one

``name`` is the member's public handle or, failing that, their login (what a
resident at the desk may remember). The rules are node.accounts': a
suspended member may log in again to read, but cannot post or answer
(node.web.common.require_active). A reset password ends every session of the
member; they choose their own on the web's password page, with the temporary
one as the current password. A change that would do nothing (approving an
active member...) is a 409 that says why. The coordinator role's rules are
node.desk's; the list says each member's part at the desk (``desk``:
"coordinator", "accompanied" or null).
"""

from __future__ import annotations

from aiohttp import web

from node import accounts, desk, erasure
from node.keys import db_key, main_app_key
from protocol.errors import ValidationError
from storage import desk as desk_store
from storage import residents
from storage.residents import Member

routes = web.RouteTableDef()


def member_json(member: Member, login: str | None = None, **more) -> dict:
    answer = {"handle": member.handle, "display_name": member.display_name,
              "state": member.state, "created_at": member.created_at, **more}  # fmt: skip
    return answer if login is None else {**answer, "login": login}


def _listed(conn, state: str | None):
    return residents.list_members(conn, state), residents.logins(conn), desk_store.roles(conn)


def _handle(request: web.Request) -> str:
    return request.match_info["handle"].lower()


@routes.get("/v1/members")
async def list_members(request: web.Request) -> web.Response:
    state = request.query.get("state")
    if state is not None and state not in residents.MEMBER_STATES:
        raise ValidationError(f"must be one of {', '.join(residents.MEMBER_STATES)}", field="state")
    listed, logins, roles = await request.app[main_app_key][db_key].read(_listed, state)
    return web.json_response([member_json(m, logins.get(m.id), desk=roles.get(m.id))
                              for m in listed])  # fmt: skip


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
    await desk.refuse_password(request.app[main_app_key], _handle(request))
    member, password, ended = await accounts.reset_password(request.app[main_app_key],
                                                            _handle(request))  # fmt: skip
    return web.json_response({**member_json(member), "password": password,
                              "sessions_ended": ended})  # fmt: skip


@routes.post("/v1/members/{handle}/grant-coordinator")
async def grant_coordinator(request: web.Request) -> web.Response:
    member = await desk.grant(request.app[main_app_key], _handle(request))
    return web.json_response(member_json(member, desk="coordinator"))


@routes.post("/v1/members/{handle}/revoke-coordinator")
async def revoke_coordinator(request: web.Request) -> web.Response:
    member, left = await desk.revoke(request.app[main_app_key], _handle(request))
    return web.json_response({**member_json(member, desk=None), "left_without_coordinator": left})


@routes.post("/v1/members/{handle}/delete")
async def delete(request: web.Request) -> web.Response:
    """The account erased, its annonces withdrawn, its handle retired: 404 for an unknown
    name, 409 for a handle deleted already."""
    erased = await erasure.delete_named(request.app[main_app_key], _handle(request))
    return web.json_response({
        "handle": erased.handle, "annonces_withdrawn": erased.annonces_withdrawn,
        "conversations_kept": erased.conversations_kept,
        "conversations_deleted": erased.conversations_deleted,
        "departures_queued": erased.departures_queued,
        "messages_dropped": erased.messages_dropped,
    })  # fmt: skip
