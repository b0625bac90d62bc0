"""Answering an annonce: private conversations between its author and a resident.

Only the two members of a conversation can read it; to anyone else it does
not exist (404). When the other member belongs to another node, each message
also goes into the message outbox, delivered point to point to that node
(node.web.delivery, node.message_delivery), never gossiped. That node must be
a peer of this one: when it is not, the resident is told so before writing,
and nothing is stored.
"""

from __future__ import annotations

import os

from aiohttp import web

from node.keys import db_key, node_key_key
from node.web import delivery
from node.web.annonces import visible_annonce
from node.web.common import association_namer, require_active, require_member
from node.web.forms import Form
from node.web.keys import member_rkey, reader_key
from node.web.render import now_of, render
from protocol.annonce import State
from storage import conversations as talk
from storage.conversations import MAX_MESSAGE_CHARS, Party

routes = web.RouteTableDef()
KEY_BYTES = 16


def _read_message(form: Form) -> str:
    return form.text("message", required=True, max_chars=MAX_MESSAGE_CHARS, multiline=True)


async def _post_message(request, conversation: talk.Conversation, member, body: str) -> None:
    from_author = conversation.is_author(member.id)
    message = await talk.add_message(
        request.app[db_key], conversation.id, key=os.urandom(KEY_BYTES),
        from_author=from_author, body=body, now=now_of(request),
    )  # fmt: skip
    other = conversation.other(member.id)
    if message is not None and other.member_id is None:
        await delivery.enqueue(request.app, conversation, message)


@routes.get("/annonces/{ref}/repondre")
async def answer_form(request: web.Request) -> web.Response:
    require_active(request)
    annonce, author_id, names = await visible_annonce(request)
    _check_may_answer(request, annonce, author_id)
    return await render(request, "answer.html", {
        "annonce": annonce, "form": Form(),
        "association": association_namer(request, names)(annonce.origin),
        "unreachable": not await delivery.reachable(request.app, annonce.origin),
    })  # fmt: skip


def _check_may_answer(request, annonce, author_id) -> None:
    member = request[member_rkey]
    own_node = request.app[node_key_key].node_id
    if annonce.origin == own_node and author_id == member.id:
        raise web.HTTPForbidden(reason="one does not answer one's own annonce")
    if annonce.state is not State.OPEN:
        raise web.HTTPForbidden(reason="the annonce is no longer open")


@routes.post("/annonces/{ref}/repondre")
async def answer(request: web.Request) -> web.Response:
    member = require_active(request)
    annonce, author_id, names = await visible_annonce(request)
    _check_may_answer(request, annonce, author_id)
    form = Form(await request.post())
    body = _read_message(form)
    unreachable = not await delivery.reachable(request.app, annonce.origin)
    if not form.ok or unreachable:
        return await render(request, "answer.html", {
            "annonce": annonce, "form": form, "unreachable": unreachable,
            "association": association_namer(request, names)(annonce.origin),
        }, status=409 if unreachable else 422)  # fmt: skip
    own_node = request.app[node_key_key].node_id
    conversation = await talk.open_conversation(
        request.app[db_key], key=os.urandom(KEY_BYTES), annonce_origin=annonce.origin,
        annonce_uid=annonce.uid, title=annonce.title,
        author=Party(annonce.origin, annonce.author_handle, annonce.author_name,
                     author_id if annonce.origin == own_node else None),
        replier=Party(own_node, member.handle, member.display_name, member.id),
        now=now_of(request),
    )  # fmt: skip
    await _post_message(request, conversation, member, body)
    raise web.HTTPSeeOther(f"/messages/{conversation.id}")


@routes.get("/messages")
async def inbox(request: web.Request) -> web.Response:
    member = require_member(request)
    entries = await request.app[reader_key].run(talk.inbox, member.id)
    return await render(request, "inbox.html", {"entries": entries, "nav": "messages"})


async def _conversation(request: web.Request, member) -> talk.Conversation:
    raw = request.match_info["id"]
    if not raw.isdigit() or len(raw) > 12:
        raise web.HTTPNotFound()
    conversation = await request.app[reader_key].run(talk.get_conversation, int(raw))
    if conversation is None or not conversation.includes(member.id):
        raise web.HTTPNotFound()
    return conversation


async def _unreachable(request, conversation, member) -> bool:
    """Whether the other member's node is one this node cannot send to (not a peer)."""
    other = conversation.other(member.id)
    return other.member_id is None and not await delivery.reachable(request.app, other.node)


async def _conversation_page(request, member, conversation, form, *, status=200):
    messages = await request.app[reader_key].run(talk.conversation_messages, conversation.id)
    await talk.mark_read(request.app[db_key], conversation, member.id)
    return await render(request, "conversation.html", {
        "conversation": conversation, "messages": messages, "form": form, "nav": "messages",
        "me_author": conversation.is_author(member.id), "other": conversation.other(member.id),
        "unreachable": await _unreachable(request, conversation, member),
    }, status=status)  # fmt: skip


@routes.get("/messages/{id}")
async def conversation_page(request: web.Request) -> web.Response:
    member = require_member(request)
    conversation = await _conversation(request, member)
    return await _conversation_page(request, member, conversation, Form())


@routes.post("/messages/{id}")
async def reply(request: web.Request) -> web.Response:
    member = require_active(request)
    conversation = await _conversation(request, member)
    form = Form(await request.post())
    body = _read_message(form)
    if await _unreachable(request, conversation, member):
        return await _conversation_page(request, member, conversation, form, status=409)
    if not form.ok:
        return await _conversation_page(request, member, conversation, form, status=422)
    await _post_message(request, conversation, member, body)
    raise web.HTTPSeeOther(f"/messages/{conversation.id}#dernier")

