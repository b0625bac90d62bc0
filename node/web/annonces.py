"""An annonce's page and its author's actions: fulfil, reopen, withdraw, renew; "my annonces".

Every change goes through node.annonces, which signs a new revision and
hands it to the network. Only the member who wrote an annonce may change it.
Writing and editing one is node/web/posting.py.

An annonce residents may no longer see answers in words that say why: its
author withdrew it, or it expired (410, ``AnnonceGone``); an unknown one is
"page introuvable" (404).
"""

from __future__ import annotations

from aiohttp import web

from node import accounts, annonces, blocks
from node.i18n import Msg
from node.keys import communes_key, db_key, node_key_key
from node.web import photo_form
from node.web.annonce_form import DURATIONS_DAYS
from node.web.common import (
    AnnonceGone,
    association_namer,
    association_names,
    neighbour_path,
    parse_ref,
    place_origin,
    require_member,
)
from node.web.forms import Form
from node.web.keys import member_rkey
from node.web.labels import CATEGORY_LABELS, KIND_BADGES, STATE_LABELS
from node.web.render import render
from protocol.annonce import annonce_ref
from storage import desk as desk_store
from storage import residents
from storage.errors import AlreadySubmitted
from storage.geo import haversine_km

routes = web.RouteTableDef()

GONE = {
    annonces.WITHDRAWN: (Msg("Cette annonce a été retirée"),
                         Msg("Son auteur l'a retirée : elle n'est plus proposée. D'autres annonces vous attendent peut-être.")),
    annonces.EXPIRED: (Msg("Cette annonce a expiré"),
                       Msg("Sa durée de publication est passée : elle n'est plus proposée. D'autres annonces vous attendent peut-être.")),
}  # fmt: skip


async def visible_annonce(request: web.Request) -> annonces.Visible:
    """The annonce of the URL, if residents may see it, and its author here if any."""
    origin, uid = parse_ref(request.match_info["ref"])
    shown = await annonces.visible(request.app, origin, uid)
    if shown is None:
        reason = await annonces.why_not_visible(request.app, origin, uid)
        if reason in GONE:
            raise AnnonceGone(reason, *GONE[reason])
        moved = await annonces.moved_to(request.app, origin, uid)
        if moved is not None:  # a link from before its node's key changed
            old_ref = request.match_info["ref"]
            raise web.HTTPMovedPermanently(
                request.rel_url.path.replace(old_ref, annonce_ref(moved, uid), 1))
        raise web.HTTPNotFound()
    member = request[member_rkey]
    author = blocks.author_of(shown.annonce)
    if member is not None and await blocks.apart(request.app, member, author):
        raise web.HTTPNotFound()  # a block keeps them apart: to either, it is not there
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
    by_desk = (annonce.origin == request.app[node_key_key].node_id  # other nodes cannot tell
               and await request.app[db_key].read(desk_store.published_at_desk, annonce.uid))
    return await render(request, "annonce.html", {
        "annonce": annonce, "is_author": is_author, "distance": distance, "by_desk": by_desk,
        "association": association_namer(request, names)(annonce.origin),
        "communes": request.app[communes_key], "categories": CATEGORY_LABELS,
        "kinds": KIND_BADGES, "states": STATE_LABELS, "durations": DURATIONS_DAYS,
        "published": "publiee" in request.query, "changed": request.query.get("fait"),
        "form": Form(), "author_page": neighbour_path(annonce.origin, annonce.author_handle),
        "photos": photo_form.shown(annonce.photos),
    })  # fmt: skip


async def own_annonce(request: web.Request, *, showing: bool = False):
    """The annonce of the URL, if the member making the request wrote it."""
    member = require_member(request)
    shown = await visible_annonce(request)
    annonces.check_author(shown.author_id, member, showing=showing)
    return member, shown.annonce


@routes.post("/annonces/{ref}/pourvue")
async def fulfil(request: web.Request) -> web.Response:
    member, annonce = await own_annonce(request)
    await annonces.fulfil(request.app, member, annonce.uid)
    raise web.HTTPSeeOther(f"/annonces/{annonce.ref}/qui-a-aide")  # node/web/thanks.py


@routes.post("/annonces/{ref}/rouvrir")
async def reopen(request: web.Request) -> web.Response:
    member, annonce = await own_annonce(request, showing=True)
    await annonces.reopen(request.app, member, annonce.uid)
    raise web.HTTPSeeOther(f"/annonces/{annonce.ref}?fait=rouverte")


@routes.get("/annonces/{ref}/retirer")
async def withdraw_confirm(request: web.Request) -> web.Response:
    _member, annonce = await own_annonce(request)
    return await render(request, "annonce_withdraw.html", {"annonce": annonce, "nav": "mine"})


@routes.post("/annonces/{ref}/retirer")
async def withdraw(request: web.Request) -> web.Response:
    try:
        member, annonce = await own_annonce(request)
    except AnnonceGone as gone:
        if gone.why != annonces.WITHDRAWN:
            raise
        raise web.HTTPSeeOther("/mes-annonces?fait=retiree") from None  # sent twice: it is
    await annonces.withdraw(request.app, annonce.uid, member=member)
    raise web.HTTPSeeOther("/mes-annonces?fait=retiree")


@routes.post("/annonces/{ref}/renouveler")
async def renew(request: web.Request) -> web.Response:
    member, annonce = await own_annonce(request, showing=True)
    form = Form(await request.post())
    days = form.integer("duree", minimum=1, maximum=max(DURATIONS_DAYS))
    if days is None:
        raise web.HTTPBadRequest(reason="bad duration")
    try:
        await annonces.renew(request.app, annonce.uid, days, member=member, form=form.key(member.id))
    except AlreadySubmitted:
        pass  # sent twice: the first one renewed it
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
