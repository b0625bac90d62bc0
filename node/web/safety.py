"""Blocking a member, the list of blocked people, and reporting a message.

« Ne plus voir cette personne » leads from an annonce, a conversation or a
neighbour's page (node/web/thanks.py) to a confirmation page that says what
a block does; confirming blocks the member (node.blocks) and shows the list
« Personnes bloquées », where each block can be lifted. « Signaler ce message » reports one message of the other
member of a conversation to this node's moderators (node.reports).
"""

from __future__ import annotations

from aiohttp import web

from node import annonces, blocks
from node import reports as node_reports
from node.errors import CannotBlock
from node.keys import db_key, node_key_key
from node.web.common import parse_ref, require_member
from node.web.conversations import member_conversation
from node.web.forms import Form
from node.web.labels import REPORT_REASONS
from node.web.render import render
from protocol.errors import DecodeError
from protocol.identity import node_id_text, parse_node_id
from protocol.limits import MAX_HANDLE_CHARS, REPORT_MAX_DETAILS_CHARS
from storage import conversations as talk
from storage import residents
from storage import thanks as thanks_store
from storage.blocks import Who
from storage.errors import AlreadySubmitted, NotFound

routes = web.RouteTableDef()
LIST = "/personnes-bloquees"


async def _annonce_author(request: web.Request, member) -> tuple[Who, str, str]:
    """The author of the URL's annonce, their name, and where to go back."""
    origin, uid = parse_ref(request.match_info["ref"])
    shown = await annonces.visible(request.app, origin, uid)
    if shown is None:
        raise web.HTTPNotFound()
    annonce = shown.annonce
    if annonce.origin == request.app[node_key_key].node_id and shown.author_id == member.id:
        raise web.HTTPNotFound()  # one's own annonce: nobody to block
    return blocks.author_of(annonce), annonce.author_name, f"/annonces/{annonce.ref}"


async def _conversation_other(request: web.Request, member) -> tuple[Who, str, str]:
    conversation = await member_conversation(request, member)
    other = conversation.other(member.id)
    return Who(other.node, other.handle), other.name, f"/messages/{conversation.id}"


async def _neighbour(request: web.Request, member) -> tuple[Who, str, str]:
    """The member of a neighbour's page (/voisins/{node}/{handle}), if this node knows them."""
    handle = request.match_info["handle"]
    try:
        node = parse_node_id(request.match_info["node"][:64])
    except DecodeError:
        raise web.HTTPNotFound() from None
    if len(handle) > MAX_HANDLE_CHARS or Who(node, handle) == blocks.me(request.app, member):
        raise web.HTTPNotFound()  # nobody, or oneself: nobody to block
    if node == request.app[node_key_key].node_id:
        found = await request.app[db_key].read(residents.member_by_handle, handle)
        name = found.display_name if found is not None else None
    else:
        name = await request.app[db_key].read(thanks_store.known_name, node, handle)
    if name is None:
        raise web.HTTPNotFound()
    return Who(node, handle), name, f"/voisins/{request.match_info['node']}/{handle}"


async def _confirm(request, member, who: Who, name: str, back: str, *, status=200, error=None):
    if await blocks.is_blocked(request.app, member, who):
        raise web.HTTPSeeOther(f"{LIST}?fait=bloque")
    return await render(request, "block_confirm.html", {
        "name": name, "back": back, "action": request.path, "error": error,
    }, status=status)  # fmt: skip


async def _block(request, member, who: Who, name: str, back: str) -> web.Response:
    try:
        await blocks.block(request.app, member, who, name)
    except CannotBlock as refusal:
        return await _confirm(request, member, who, name, back, status=409, error=refusal.detail)
    raise web.HTTPSeeOther(f"{LIST}?fait=bloque")


@routes.get("/annonces/{ref}/bloquer")
async def block_from_annonce_form(request: web.Request) -> web.Response:
    member = require_member(request)
    return await _confirm(request, member, *await _annonce_author(request, member))


@routes.post("/annonces/{ref}/bloquer")
async def block_from_annonce(request: web.Request) -> web.Response:
    member = require_member(request)
    return await _block(request, member, *await _annonce_author(request, member))


@routes.get("/messages/{id}/bloquer")
async def block_from_conversation_form(request: web.Request) -> web.Response:
    member = require_member(request)
    return await _confirm(request, member, *await _conversation_other(request, member))


@routes.post("/messages/{id}/bloquer")
async def block_from_conversation(request: web.Request) -> web.Response:
    member = require_member(request)
    return await _block(request, member, *await _conversation_other(request, member))


@routes.get("/voisins/{node}/{handle}/bloquer")
async def block_from_neighbour_form(request: web.Request) -> web.Response:
    member = require_member(request)
    return await _confirm(request, member, *await _neighbour(request, member))


@routes.post("/voisins/{node}/{handle}/bloquer")
async def block_from_neighbour(request: web.Request) -> web.Response:
    member = require_member(request)
    return await _block(request, member, *await _neighbour(request, member))


@routes.get(LIST)
async def blocked_list(request: web.Request) -> web.Response:
    member = require_member(request)
    listed = await blocks.blocked_list(request.app, member)
    return await render(request, "blocked_list.html", {
        "blocks": listed, "done": request.query.get("fait"), "node_text": node_id_text,
        "own": request.app[node_key_key].node_id, "limit": blocks.MAX_BLOCKS_PER_MEMBER,
    })  # fmt: skip


@routes.post(LIST + "/debloquer")
async def unblock(request: web.Request) -> web.Response:
    member = require_member(request)
    form = Form(await request.post())
    node_text, handle = form.raw("noeud"), form.raw("pseudo")
    try:
        node_id = parse_node_id(node_text[:64])
    except DecodeError:
        raise web.HTTPBadRequest(reason="bad node") from None
    if not handle or len(handle) > MAX_HANDLE_CHARS:
        raise web.HTTPBadRequest(reason="bad handle")
    try:
        await blocks.unblock(request.app, member, Who(node_id, handle))
    except NotFound:
        pass  # lifted already (sent twice), or never blocked: the list says how things stand
    raise web.HTTPSeeOther(f"{LIST}?fait=debloque")


# --- Reporting a message --------------------------------------------------------------


async def _their_message(request: web.Request, member) -> tuple[talk.Conversation, talk.Message]:
    """The URL's message, if the member's conversation holds it and the other member wrote it."""
    conversation = await member_conversation(request, member)
    raw = request.match_info["mid"]
    if not raw.isdigit() or len(raw) > 12:
        raise web.HTTPNotFound()
    listed = await request.app[db_key].read(talk.conversation_messages, conversation.id)
    found = next((m for m in listed if m.id == int(raw)), None)
    if found is None or found.from_author == conversation.is_author(member.id):
        raise web.HTTPNotFound()  # not in this conversation, or the member's own
    return conversation, found


@routes.get("/messages/{id}/signaler/{mid}")
async def report_message_form(request: web.Request) -> web.Response:
    member = require_member(request)
    conversation, message = await _their_message(request, member)
    if "envoye" in request.query:
        return await render(request, "block_report_sent.html", {"conversation": conversation})
    return await render(request, "block_report.html", {
        "conversation": conversation, "message": message, "form": Form(),
        "reasons": REPORT_REASONS, "other": conversation.other(member.id),
    })  # fmt: skip


@routes.post("/messages/{id}/signaler/{mid}")
async def report_message(request: web.Request) -> web.Response:
    member = require_member(request)
    conversation, message = await _their_message(request, member)
    form = Form(await request.post())
    reason = form.choice("raison", REPORT_REASONS)
    details = form.text("details", max_chars=REPORT_MAX_DETAILS_CHARS, multiline=True)
    if not form.ok:
        return await render(request, "block_report.html", {
            "conversation": conversation, "message": message, "form": form,
            "reasons": REPORT_REASONS, "other": conversation.other(member.id),
        }, status=422)  # fmt: skip
    try:
        await node_reports.report_message(request.app, member.id, conversation, message, reason,
                                          details, form=form.key(member.id))  # fmt: skip
    except AlreadySubmitted:
        pass  # sent twice: the first one is the report
    raise web.HTTPSeeOther(f"/messages/{conversation.id}/signaler/{message.id}?envoye=1")
