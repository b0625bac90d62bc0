"""Posting and managing annonces: new (with preview), page, edit, fulfil, withdraw, renew.

Every change goes through node.publishing, which signs a new revision and
hands it to the network. Only the member who wrote an annonce may change it.
"""

from __future__ import annotations

from aiohttp import web

from node import publishing
from node.i18n import Msg
from node.keys import db_key, node_key_key
from node.web.annonce_form import (
    DURATIONS_DAYS,
    FIELDS,
    form_from_annonce,
    read_annonce_form,
)
from node.web.common import (
    association_namer,
    parse_ref,
    peer_names,
    place_origin,
    require_active,
    require_member,
)
from node.web.forms import Form
from node.web.keys import communes_key, member_rkey, reader_key
from node.web.labels import CATEGORY_LABELS, KIND_BADGES, KIND_LABELS, STATE_LABELS
from node.web.render import now_of, render
from protocol.annonce import State
from protocol.errors import ValidationError
from storage import residents
from storage.search import annonce_for_page, haversine_km

routes = web.RouteTableDef()
_REFUSED = Msg("Cette annonce n'a pas pu être publiée : vérifiez les champs et réessayez.")


async def _profile(request: web.Request, member) -> residents.Profile:
    return await request.app[reader_key].run(residents.get_profile, member.id)


async def _form_page(request, form, *, status=200, action="/annonces/nouvelle", editing=None):
    return await render(request, "annonce_form.html", {
        "form": form, "action": action, "editing": editing, "nav": "new",
        "kinds": KIND_LABELS, "categories": CATEGORY_LABELS,
        "communes": request.app[communes_key], "durations": DURATIONS_DAYS,
        "profile": await _profile(request, request[member_rkey]),
    }, status=status)  # fmt: skip


@routes.get("/annonces/nouvelle")
async def new_form(request: web.Request) -> web.Response:
    member = require_active(request)
    profile = await _profile(request, member)
    form = Form()
    form.values.update(type="offer", duree="30",
                       lieu="domicile" if profile.home.is_set else "commune")  # fmt: skip
    return await _form_page(request, form)


@routes.post("/annonces/nouvelle")
async def new_submit(request: web.Request) -> web.Response:
    member = require_active(request)
    data = await request.post()
    profile = await _profile(request, member)
    communes = request.app[communes_key]
    form, draft = read_annonce_form(data, profile, communes, now_of(request))
    action = data.get("action")
    if draft is None or action == "modifier":
        return await _form_page(request, form, status=422 if draft is None else 200)
    if action != "publier":
        return await render(request, "annonce_preview.html", {
            "form": form, "draft": draft, "fields": FIELDS, "nav": "new",
            "communes": communes, "categories": CATEGORY_LABELS, "kinds": KIND_BADGES,
        })  # fmt: skip
    author = publishing.Author(member.handle, member.display_name)
    try:
        signed = await publishing.publish(request.app, author, draft)
    except ValidationError:
        form.error("texte", _REFUSED)
        return await _form_page(request, form, status=422)
    await residents.record_authorship(request.app[db_key], signed.annonce.uid, member.id,
                                      now_of(request))  # fmt: skip
    raise web.HTTPSeeOther(f"/annonces/{signed.annonce.ref}?publiee=1")


def _page_data(conn, origin: bytes, uid: bytes, own: bool):
    shown = annonce_for_page(conn, origin, uid)
    author = residents.author_of(conn, uid) if own else None
    return shown, author, peer_names(conn)


async def visible_annonce(request: web.Request):
    """The annonce of the URL, if residents may see it, and its author here if any."""
    origin, uid = parse_ref(request.match_info["ref"])
    own = origin == request.app[node_key_key].node_id
    shown, author_id, names = await request.app[reader_key].run(_page_data, origin, uid, own)
    if (shown is None or shown.hidden or shown.annonce.is_tombstone
            or shown.annonce.expires <= now_of(request)):  # fmt: skip
        raise web.HTTPNotFound()
    return shown.annonce, author_id, names


@routes.get("/annonces/{ref}")
async def annonce_page(request: web.Request) -> web.Response:
    annonce, author_id, names = await visible_annonce(request)
    member = request[member_rkey]
    is_author = member is not None and author_id == member.id
    distance = None
    if member is not None and not is_author:
        profile = await _profile(request, member)
        home = place_origin(request, profile.home)
        here = (place_origin(request, residents.Place(lat=annonce.point.lat, lon=annonce.point.lon))
                if annonce.point else place_origin(request, residents.Place(commune=annonce.commune)))  # fmt: skip
        if home and here:
            distance = haversine_km(home.lat, home.lon, here.lat, here.lon)
    return await render(request, "annonce.html", {
        "annonce": annonce, "is_author": is_author, "distance": distance,
        "association": association_namer(request, names)(annonce.origin),
        "communes": request.app[communes_key], "categories": CATEGORY_LABELS,
        "kinds": KIND_BADGES, "states": STATE_LABELS, "durations": DURATIONS_DAYS,
        "published": "publiee" in request.query, "changed": request.query.get("fait"),
    })  # fmt: skip


async def _own(request: web.Request):
    """The annonce of the URL, if the member making the request wrote it."""
    member = require_member(request)
    annonce, author_id, _names = await visible_annonce(request)
    if author_id != member.id:
        raise web.HTTPForbidden(reason="not the author")
    return member, annonce


@routes.get("/annonces/{ref}/modifier")
async def edit_form(request: web.Request) -> web.Response:
    member, annonce = await _own(request)
    require_active(request)
    form = form_from_annonce(annonce, await _profile(request, member))
    return await _form_page(request, form, action=f"/annonces/{annonce.ref}/modifier",
                            editing=annonce)  # fmt: skip


@routes.post("/annonces/{ref}/modifier")
async def edit_submit(request: web.Request) -> web.Response:
    member, annonce = await _own(request)
    require_active(request)
    profile = await _profile(request, member)
    form, draft = read_annonce_form(await request.post(), profile, request.app[communes_key],
                                    now_of(request), with_duration=False)  # fmt: skip
    action = f"/annonces/{annonce.ref}/modifier"
    if draft is None:
        return await _form_page(request, form, status=422, action=action, editing=annonce)
    try:
        await publishing.revise(
            request.app, annonce.uid, kind=draft.kind, category=draft.category,
            title=draft.title, text=draft.text, commune=draft.commune, point=draft.point,
            sortie_at=draft.sortie_at, author_name=member.display_name,
        )  # fmt: skip
    except ValidationError:
        form.error("texte", _REFUSED)
        return await _form_page(request, form, status=422, action=action, editing=annonce)
    raise web.HTTPSeeOther(f"/annonces/{annonce.ref}?fait=modifiee")


@routes.post("/annonces/{ref}/pourvue")
async def fulfil(request: web.Request) -> web.Response:
    _member, annonce = await _own(request)
    if annonce.state is State.OPEN:
        await publishing.revise(request.app, annonce.uid, state=State.FULFILLED)
    raise web.HTTPSeeOther(f"/annonces/{annonce.ref}?fait=pourvue")


@routes.post("/annonces/{ref}/rouvrir")
async def reopen(request: web.Request) -> web.Response:
    _member, annonce = await _own(request)
    require_active(request)  # reopening or renewing shows it again: posting, in effect
    if annonce.state is State.FULFILLED:
        await publishing.revise(request.app, annonce.uid, state=State.OPEN)
    raise web.HTTPSeeOther(f"/annonces/{annonce.ref}?fait=rouverte")


@routes.get("/annonces/{ref}/retirer")
async def withdraw_confirm(request: web.Request) -> web.Response:
    _member, annonce = await _own(request)
    return await render(request, "annonce_withdraw.html", {"annonce": annonce, "nav": "mine"})


@routes.post("/annonces/{ref}/retirer")
async def withdraw(request: web.Request) -> web.Response:
    _member, annonce = await _own(request)
    await publishing.withdraw(request.app, annonce.uid)
    raise web.HTTPSeeOther("/mes-annonces?fait=retiree")


@routes.post("/annonces/{ref}/renouveler")
async def renew(request: web.Request) -> web.Response:
    _member, annonce = await _own(request)
    require_active(request)  # reopening or renewing shows it again: posting, in effect
    form = Form(await request.post())
    days = form.integer("duree", minimum=1, maximum=max(DURATIONS_DAYS))
    if days is None:
        raise web.HTTPBadRequest(reason="bad duration")
    await publishing.renew(request.app, annonce.uid, days)
    raise web.HTTPSeeOther(f"/annonces/{annonce.ref}?fait=renouvelee")


@routes.get("/mes-annonces")
async def mine(request: web.Request) -> web.Response:
    member = require_member(request)
    own = await request.app[reader_key].run(
        residents.own_annonces, member.id, request.app[node_key_key].node_id
    )
    return await render(request, "mine.html", {
        "annonces": own, "nav": "mine", "states": STATE_LABELS,
        "categories": CATEGORY_LABELS, "kinds": KIND_BADGES,
        "origin": request.app[node_key_key].node_id, "done": request.query.get("fait"),
    })  # fmt: skip
