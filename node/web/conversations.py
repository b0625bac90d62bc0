"""Answering an annonce: private conversations between its author and a resident.

Only the two members of a conversation can read it; to anyone else it does
not exist (404). The rules (who may answer, which nodes messages can go to)
and the units of work are node.conversations'; these handlers read the form,
call it, and render.
"""

from __future__ import annotations

from aiohttp import web

from node import blocks, conversations, newcomers, thanks
from node.errors import CannotAnswer, KeptApart, NewMemberLimit, Unreachable
from node.keys import db_key
from node.meeting_places import places_in
from node.web.annonces import visible_annonce
from node.web.common import (
    association_namer,
    association_names,
    require_active,
    require_member,
)
from node.web.forms import Form
from node.web.render import render
from storage import conversations as talk
from storage import desk as desk_store
from storage.conversations import MAX_MESSAGE_CHARS
from storage.errors import AlreadySubmitted

routes = web.RouteTableDef()


def _read_message(form: Form) -> str:
    return form.text("message", required=True, max_chars=MAX_MESSAGE_CHARS, multiline=True)


async def _answer_page(request, shown, form, *, status=200, unreachable=None, limited=None):
    if unreachable is None:
        unreachable = not await conversations.reachable(request.app, shown.annonce.origin)
    names = await association_names(request)
    waiting = not unreachable and await conversations.not_answering(request.app,
                                                                    shown.annonce.origin)
    return await render(request, "answer.html", {
        "annonce": shown.annonce, "form": form, "unreachable": unreachable, "waiting": waiting,
        "association": association_namer(request, names)(shown.annonce.origin),
        "limited": limited,
    }, status=status)  # fmt: skip


def _may_answer(request, shown, member) -> None:
    try:
        conversations.check_may_answer(request.app, shown, member)
    except CannotAnswer as refusal:
        raise web.HTTPForbidden(reason=refusal.detail) from None


@routes.get("/annonces/{ref}/repondre")
async def answer_form(request: web.Request) -> web.Response:
    member = require_active(request)
    shown = await visible_annonce(request)
    _may_answer(request, shown, member)
    return await _answer_page(request, shown, Form())


@routes.post("/annonces/{ref}/repondre")
async def answer(request: web.Request) -> web.Response:
    member = require_active(request)
    shown = await visible_annonce(request)
    _may_answer(request, shown, member)
    form = Form(await request.post())
    body = _read_message(form)
    if not await conversations.reachable(request.app, shown.annonce.origin):
        return await _answer_page(request, shown, form, status=409, unreachable=True)
    if not form.ok:
        return await _answer_page(request, shown, form, status=422, unreachable=False)
    try:
        await newcomers.check(request.app, member, newcomers.ANSWERS)
    except NewMemberLimit as limited:  # the form keeps the message
        return await _answer_page(request, shown, form, status=429, unreachable=False,
                                  limited=limited)  # fmt: skip
    try:
        conversation = await conversations.answer(request.app, member, shown, body,
                                                  form=form.key(member.id))  # fmt: skip
    except AlreadySubmitted as earlier:  # sent twice: the first one is the message
        raise web.HTTPSeeOther(f"/messages/{earlier.result}") from None
    except Unreachable:  # no longer a peer since the check above
        return await _answer_page(request, shown, form, status=409, unreachable=True)
    except KeptApart:  # blocked since the page was shown: the annonce is no longer theirs to see
        raise web.HTTPNotFound() from None
    raise web.HTTPSeeOther(f"/messages/{conversation.id}")


@routes.get("/messages")
async def inbox(request: web.Request) -> web.Response:
    member = require_member(request)
    entries = await request.app[db_key].read(talk.inbox, member.id)
    return await render(request, "inbox.html", {"entries": entries, "nav": "messages"})


async def member_conversation(request: web.Request, member) -> talk.Conversation:
    """The URL's conversation, if the member is one of its two members (404 otherwise)."""
    raw = request.match_info["id"]
    if not raw.isdigit() or len(raw) > 12:
        raise web.HTTPNotFound()
    conversation = await request.app[db_key].read(talk.get_conversation, int(raw))
    if conversation is None or not conversation.includes(member.id):
        raise web.HTTPNotFound()
    return conversation


async def _conversation_page(request, member, conversation, form, *, status=200):
    messages = await request.app[db_key].read(talk.conversation_messages, conversation.id)
    desk_ids = await request.app[db_key].read(desk_store.desk_message_ids, conversation.id)
    await conversations.mark_read(request.app, conversation, member)
    safety = await request.app[db_key].read(blocks.conversation_safety, conversation, member.id)
    return await render(request, "conversation.html", {
        "conversation": conversation, "messages": messages, "form": form, "nav": "messages",
        "desk_ids": desk_ids, "me_author": conversation.is_author(member.id), "other": conversation.other(member.id),
        "unreachable": not await conversations.other_reachable(request.app, conversation, member),
        "closed": safety.closed, "i_blocked": safety.i_blocked,
        "meeting_places": places_in(request.app, safety.commune),
        "exchange": await thanks.exchange_of_conversation(request.app, conversation.key),
    }, status=status)  # fmt: skip


@routes.get("/messages/{id}")
async def conversation_page(request: web.Request) -> web.Response:
    member = require_member(request)
    conversation = await member_conversation(request, member)
    return await _conversation_page(request, member, conversation, Form())


@routes.post("/messages/{id}")
async def reply(request: web.Request) -> web.Response:
    member = require_active(request)
    conversation = await member_conversation(request, member)
    form = Form(await request.post())
    body = _read_message(form)
    if not await conversations.other_reachable(request.app, conversation, member):
        return await _conversation_page(request, member, conversation, form, status=409)
    if not form.ok:
        return await _conversation_page(request, member, conversation, form, status=422)
    try:
        await conversations.reply(request.app, member, conversation, body,
                                  form=form.key(member.id))  # fmt: skip
    except AlreadySubmitted:
        pass  # sent twice: the first one is in the conversation
    except Unreachable:
        return await _conversation_page(request, member, conversation, form, status=409)
    except KeptApart:  # a block stands between them: the page says the conversation is closed
        return await _conversation_page(request, member, conversation, form, status=409)
    raise web.HTTPSeeOther(f"/messages/{conversation.id}#dernier")
