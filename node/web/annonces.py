"""Posting and managing annonces: new (with preview), page, edit, fulfil, withdraw, renew.

Every change goes through node.annonces, which signs a new revision and
hands it to the network. Only the member who wrote an annonce may change it.
"""

from __future__ import annotations

from aiohttp import web

from node import accounts, annonces
from node.clock import now
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
    association_names,
    parse_ref,
    place_origin,
    require_active,
    require_member,
)
from node.web.forms import Form
from node.web.keys import communes_key, member_rkey
from node.web.labels import CATEGORY_LABELS, KIND_BADGES, KIND_LABELS, STATE_LABELS
from node.web.render import render
from protocol.errors import ValidationError
from storage import residents
from storage.geo import haversine_km

routes = web.RouteTableDef()
_REFUSED = Msg("Cette annonce n'a pas pu être publiée : vérifiez les champs et réessayez.")


async def _form_page(request, form, *, status=200, action="/annonces/nouvelle", editing=None):
    return await render(request, "annonce_form.html", {
        "form": form, "action": action, "editing": editing, "nav": "new",
        "kinds": KIND_LABELS, "categories": CATEGORY_LABELS,
        "communes": request.app[communes_key], "durations": DURATIONS_DAYS,
        "profile": await accounts.profile_of(request.app, request[member_rkey]),
    }, status=status)  # fmt: skip


@routes.get("/annonces/nouvelle")
async def new_form(request: web.Request) -> web.Response:
    member = require_active(request)
    profile = await accounts.profile_of(request.app, member)
    form = Form()
    form.values.update(type="offer", duree="30",
                       lieu="domicile" if profile.home.is_set else "commune")  # fmt: skip
    return await _form_page(request, form)


@routes.post("/annonces/nouvelle")
async def new_submit(request: web.Request) -> web.Response:
    member = require_active(request)
    data = await request.post()
    profile = await accounts.profile_of(request.app, member)
    communes = request.app[communes_key]
    form, draft = read_annonce_form(data, profile, communes, now(request.app))
    action = data.get("action")
    if draft is None or action == "modifier":
        return await _form_page(request, form, status=422 if draft is None else 200)
    if action != "publier":
        return await render(request, "annonce_preview.html", {
            "form": form, "draft": draft, "fields": FIELDS, "nav": "new",
            "communes": communes, "categories": CATEGORY_LABELS, "kinds": KIND_BADGES,
        })  # fmt: skip
    author = annonces.Author(member.handle, member.display_name)
    try:
        signed = await annonces.publish(request.app, author, draft, member_id=member.id)
    except ValidationError:
        form.error("texte", _REFUSED)
        return await _form_page(request, form, status=422)
    raise web.HTTPSeeOther(f"/annonces/{signed.annonce.ref}?publiee=1")


async def visible_annonce(request: web.Request) -> annonces.Visible:
    """The annonce of the URL, if residents may see it, and its author here if any."""
    origin, uid = parse_ref(request.match_info["ref"])
    shown = await annonces.visible(request.app, origin, uid)
    if shown is None:
        raise web.HTTPNotFound()
    return shown


@routes.get("/annonces/{ref}")
async def annonce_page(request: web.Request) -> web.Response:
    shown = await visible_annonce(request)
    annonce, member = shown.annonce, request[member_rkey]
    is_author = member is not None and shown.author_id == member.id
    distance = None
    if member is not None and not is_author:
        profile = await accounts.profile_of(request.app, member)
        home = place_origin(request, profile.home)
        here = (place_origin(request, residents.Place(lat=annonce.point.lat, lon=annonce.point.lon))
                if annonce.point else place_origin(request, residents.Place(commune=annonce.commune)))  # fmt: skip
        if home and here:
            distance = haversine_km(home.lat, home.lon, here.lat, here.lon)
    names = await association_names(request)
    return await render(request, "annonce.html", {
        "annonce": annonce, "is_author": is_author, "distance": distance,
        "association": association_namer(request, names)(annonce.origin),
        "communes": request.app[communes_key], "categories": CATEGORY_LABELS,
        "kinds": KIND_BADGES, "states": STATE_LABELS, "durations": DURATIONS_DAYS,
        "published": "publiee" in request.query, "changed": request.query.get("fait"),
    })  # fmt: skip


async def _own(request: web.Request, *, showing: bool = False):
    """The annonce of the URL, if the member making the request wrote it."""
    member = require_member(request)
    shown = await visible_annonce(request)
    annonces.check_author(shown.author_id, member, showing=showing)
    return member, shown.annonce


@routes.get("/annonces/{ref}/modifier")
async def edit_form(request: web.Request) -> web.Response:
    member, annonce = await _own(request, showing=True)
    form = form_from_annonce(annonce, await accounts.profile_of(request.app, member))
    return await _form_page(request, form, action=f"/annonces/{annonce.ref}/modifier",
                            editing=annonce)  # fmt: skip


@routes.post("/annonces/{ref}/modifier")
async def edit_submit(request: web.Request) -> web.Response:
    member, annonce = await _own(request, showing=True)
    profile = await accounts.profile_of(request.app, member)
    form, draft = read_annonce_form(await request.post(), profile, request.app[communes_key],
                                    now(request.app), with_duration=False)  # fmt: skip
    action = f"/annonces/{annonce.ref}/modifier"
    if draft is None:
        return await _form_page(request, form, status=422, action=action, editing=annonce)
    try:
        await annonces.edit(request.app, member, annonce.uid, draft)
    except ValidationError:
        form.error("texte", _REFUSED)
        return await _form_page(request, form, status=422, action=action, editing=annonce)
    raise web.HTTPSeeOther(f"/annonces/{annonce.ref}?fait=modifiee")


@routes.post("/annonces/{ref}/pourvue")
async def fulfil(request: web.Request) -> web.Response:
    member, annonce = await _own(request)
    await annonces.fulfil(request.app, member, annonce.uid)
    raise web.HTTPSeeOther(f"/annonces/{annonce.ref}?fait=pourvue")


@routes.post("/annonces/{ref}/rouvrir")
async def reopen(request: web.Request) -> web.Response:
    member, annonce = await _own(request, showing=True)
    await annonces.reopen(request.app, member, annonce.uid)
    raise web.HTTPSeeOther(f"/annonces/{annonce.ref}?fait=rouverte")


@routes.get("/annonces/{ref}/retirer")
async def withdraw_confirm(request: web.Request) -> web.Response:
    _member, annonce = await _own(request)
    return await render(request, "annonce_withdraw.html", {"annonce": annonce, "nav": "mine"})


@routes.post("/annonces/{ref}/retirer")
async def withdraw(request: web.Request) -> web.Response:
    member, annonce = await _own(request)
    await annonces.withdraw(request.app, annonce.uid, member=member)
    raise web.HTTPSeeOther("/mes-annonces?fait=retiree")


@routes.post("/annonces/{ref}/renouveler")
async def renew(request: web.Request) -> web.Response:
    member, annonce = await _own(request, showing=True)
    form = Form(await request.post())
    days = form.integer("duree", minimum=1, maximum=max(DURATIONS_DAYS))
    if days is None:
        raise web.HTTPBadRequest(reason="bad duration")
    await annonces.renew(request.app, annonce.uid, days, member=member)
    raise web.HTTPSeeOther(f"/annonces/{annonce.ref}?fait=renouvelee")


@routes.get("/mes-annonces")
async def mine(request: web.Request) -> web.Response:
    member = require_member(request)
    origin = request.app[node_key_key].node_id
    own = await request.app[db_key].read(residents.own_annonces, member.id, origin)
    return await render(request, "mine.html", {
        "annonces": own, "nav": "mine", "states": STATE_LABELS,
        "categories": CATEGORY_LABELS, "kinds": KIND_BADGES,
        "origin": origin, "done": request.query.get("fait"),
    })  # fmt: skip
