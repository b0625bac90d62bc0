"""The admin API's endpoints: thin over node.peering, node.annonces and node.sync.

    GET    /v1/status                     (node/admin/status.py)
    GET    /v1/peers                      every peer, with state and counts
    POST   /v1/peers/preview  {url}       the node document a URL serves
    POST   /v1/peers          {url, node_id?}   store it (node_id: the key confirmed)
    DELETE /v1/peers/{node_id}
    GET    /v1/blocked
    POST   /v1/blocked        {origin, reason?}
    DELETE /v1/blocked/{origin}
    GET    /v1/annonces?limit=N           current revisions, newest first
    POST   /v1/annonces       {kind, category, title, text, commune?, days?, sortie_at?}
    PATCH  /v1/annonces/{ref} {title?, text?}   a new revision of one of ours
    POST   /v1/annonces/{ref}/withdraw
    POST   /v1/sync           {node_id?}  an anti-entropy pass now; waits for it

Bodies and answers are JSON; node ids are unpadded base64url, annonce ids hex.
"""

from __future__ import annotations

import json

from aiohttp import web

from node import annonces, peering
from node.keys import (
    db_key,
    main_app_key,
    node_key_key,
    settings_key,
)
from node.sync import sync_with_peers
from protocol.annonce import Category, Kind, parse_annonce_ref
from protocol.errors import DecodeError, ValidationError
from protocol.identity import node_id_text, parse_node_id
from storage import annonces as annonce_store
from storage import peers as peer_store
from storage.annonces import StoredAnnonce
from storage.errors import NotFound

routes = web.RouteTableDef()

OPERATOR_HANDLE = "operateur"
DEFAULT_LIST_LIMIT = 10_000
OPERATOR_TEXT_MAX_CHARS = 1000  # an operator's reason or note (block, hide, resolve)
MAX_LIST_LIMIT = 100_000


def main_app(request: web.Request) -> web.Application:
    return request.app[main_app_key]


async def json_body(request: web.Request) -> dict:
    try:
        body = await request.json(loads=lambda text: json.loads(text))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise DecodeError("the body is not JSON") from None
    if not isinstance(body, dict):
        raise DecodeError("the body is a JSON object")
    return body


def text_field(
    body: dict, name: str, *, required: bool = True, default: str | None = None,
    max_chars: int = OPERATOR_TEXT_MAX_CHARS,
):  # fmt: skip
    value = body.get(name, default)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise ValidationError("must be text", field=name)
    if len(value) > max_chars:
        raise ValidationError(f"at most {max_chars} characters", field=name)
    return value


def node_id_field(text: object, field: str) -> bytes:
    try:
        return parse_node_id(text if isinstance(text, str) else "")
    except DecodeError:
        raise ValidationError("must be a node id: 43 base64url characters", field=field) from None


def annonce_json(stored: StoredAnnonce) -> dict:
    a = stored.annonce
    return {
        "ref": a.ref,
        "id": stored.id.hex(),
        "origin": node_id_text(a.origin),
        "rev": a.rev,
        "kind": a.kind.value,
        "category": a.category.value,
        "state": a.state.value,
        "title": a.title,
        "text": a.text,
        "lang": a.lang,
        "commune": a.commune,
        "author_handle": a.author_handle,
        "author_name": a.author_name,
        "created": a.created,
        "updated": a.updated,
        "expires": a.expires,
        "sortie_at": a.sortie_at,
        "hidden": stored.hidden,
        "source": node_id_text(stored.source) if stored.source else None,
        "received_at": stored.received_at,
    }


def _revision_json(signed) -> dict:
    return {"ref": signed.annonce.ref, "id": signed.id.hex(), "rev": signed.annonce.rev}


# --- Peers ----------------------------------------------------------------------------


@routes.get("/v1/peers")
async def list_peers(request: web.Request) -> web.Response:
    return web.json_response(await peering.peer_summaries(main_app(request)))


@routes.post("/v1/peers/preview")
async def preview_peer(request: web.Request) -> web.Response:
    body = await json_body(request)
    doc = await peering.preview_peer(main_app(request), text_field(body, "url"))
    return web.json_response({"node_id": doc.id, "name": doc.name, "url": doc.url,
                              "fingerprint": doc.fingerprint, "area": doc.area})  # fmt: skip


@routes.post("/v1/peers")
async def add_peer(request: web.Request) -> web.Response:
    app, body = main_app(request), await json_body(request)
    expected = body.get("node_id")
    peer = await peering.add_peer(
        app, text_field(body, "url"), None if expected is None else node_id_field(expected, "node_id")
    )
    node_id = node_id_text(peer.node_id)
    summary = next(s for s in await peering.peer_summaries(app) if s["node_id"] == node_id)
    summary["accepts_us"] = await peering.accepts_us(app, peer)
    return web.json_response(summary, status=201)


@routes.delete("/v1/peers/{node_id}")
async def remove_peer(request: web.Request) -> web.Response:
    await peering.remove_peer(main_app(request), node_id_field(request.match_info["node_id"], "node_id"))
    return web.Response(status=204)


@routes.get("/v1/blocked")
async def list_blocked(request: web.Request) -> web.Response:
    blocked = await main_app(request)[db_key].read(peer_store.list_blocked)
    return web.json_response([
        {"origin": node_id_text(b.origin), "reason": b.reason, "blocked_at": b.blocked_at}
        for b in blocked
    ])  # fmt: skip


@routes.post("/v1/blocked")
async def block_origin(request: web.Request) -> web.Response:
    body = await json_body(request)
    origin = node_id_field(body.get("origin"), "origin")
    dropped = await peering.block_origin(
        main_app(request), origin, text_field(body, "reason", default="")
    )
    return web.json_response({"origin": node_id_text(origin), "dropped": dropped}, status=201)


@routes.delete("/v1/blocked/{origin}")
async def unblock_origin(request: web.Request) -> web.Response:
    await peering.unblock_origin(main_app(request), node_id_field(request.match_info["origin"], "origin"))
    return web.Response(status=204)


# --- Annonces -------------------------------------------------------------------------


@routes.get("/v1/annonces")
async def list_annonces(request: web.Request) -> web.Response:
    raw = request.query.get("limit", str(DEFAULT_LIST_LIMIT))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIST_LIMIT:
        raise ValidationError(f"must be 1 to {MAX_LIST_LIMIT}", field="limit")
    held = await main_app(request)[db_key].read(annonce_store.list_annonces, limit=int(raw))
    return web.json_response([annonce_json(stored) for stored in held])


@routes.post("/v1/annonces")
async def post_annonce(request: web.Request) -> web.Response:
    app, body = main_app(request), await json_body(request)
    draft = annonces.Draft(
        kind=_choice(body, "kind", Kind),
        category=_choice(body, "category", Category),
        title=text_field(body, "title"),
        text=text_field(body, "text"),
        commune=text_field(body, "commune", required=False),
        days=_integer(body, "days", 30),
        sortie_at=_integer(body, "sortie_at", None),
    )
    author = annonces.Author(
        text_field(body, "handle", default=OPERATOR_HANDLE),
        text_field(body, "name", default=app[settings_key].name[:64]),
    )
    signed = await annonces.publish(app, author, draft)
    return web.json_response(_revision_json(signed), status=201)


def _choice(body: dict, name: str, enum):
    value = text_field(body, name)
    try:
        return enum(value)
    except ValueError:
        choices = ", ".join(member.value for member in enum)
        raise ValidationError(f"must be one of {choices}", field=name) from None


def _integer(body: dict, name: str, default):
    value = body.get(name, default)
    if value is default:
        return value
    if type(value) is not int:
        raise ValidationError("must be a whole number", field=name)
    return value


def _own_uid(app: web.Application, ref: str) -> bytes:
    try:
        origin, uid = parse_annonce_ref(ref)
    except DecodeError:
        raise NotFound(f"no annonce {ref!r}") from None
    if origin != app[node_key_key].node_id:
        raise ValidationError("only this node's own annonces can be changed here", field="ref")
    return uid


@routes.patch("/v1/annonces/{ref}")
async def edit_annonce(request: web.Request) -> web.Response:
    app, body = main_app(request), await json_body(request)
    changes = {name: text_field(body, name) for name in ("title", "text") if name in body}
    if not changes:
        raise ValidationError("nothing to change: give a title or a text", field="title")
    signed = await annonces.revise(app, _own_uid(app, request.match_info["ref"]), **changes)
    return web.json_response(_revision_json(signed))


@routes.post("/v1/annonces/{ref}/withdraw")
async def withdraw_annonce(request: web.Request) -> web.Response:
    app = main_app(request)
    signed = await annonces.withdraw(app, _own_uid(app, request.match_info["ref"]))
    return web.json_response(_revision_json(signed))


# --- Sync -----------------------------------------------------------------------------


@routes.post("/v1/sync")
async def sync_now(request: web.Request) -> web.Response:
    app, body = main_app(request), await json_body(request)
    peers = await app[db_key].read(peer_store.list_peers)
    if body.get("node_id") is not None:
        wanted = node_id_field(body["node_id"], "node_id")
        peers = [p for p in peers if p.node_id == wanted]
        if not peers:
            raise NotFound("no such peer")
    reports = await sync_with_peers(app, peers)
    names = {p.node_id: p.name for p in peers}
    return web.json_response(
        {"results": [{**r.as_dict(), "name": names[r.peer_id]} for r in reports]}
    )
