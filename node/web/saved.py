"""Saved searches: « Être prévenu des nouvelles annonces de cette recherche ».

The home page's results carry, for a member, a small form with the search
as it stands (words, offer or request, category, around home or work and how
far); ``POST /recherches`` keeps it (node.alerts checks it and keeps it once),
and ``/recherches`` lists the member's searches in plain words, each with a
link to its annonces and a button that deletes it. A search node.alerts
refuses is shown with its reason.
"""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from node import accounts, alerts
from node.alerts import SearchRefused, SearchSpec
from node.i18n import Msg
from node.web.common import require_member
from node.web.labels import CATEGORY_LABELS
from node.web.render import render
from node.web.search import KIND_PARAMS
from protocol.annonce import Kind
from storage.notices import SavedSearch

routes = web.RouteTableDef()

KIND_NAMES = {Kind.OFFER.value: Msg("Offres"), Kind.REQUEST.value: Msg("Demandes")}
PARAM_OF_KIND = {kind.value: param for param, kind in KIND_PARAMS.items()}
MAX_ID_DIGITS = 12
DONE = {
    "enregistree": Msg("Votre recherche est enregistrée : les nouvelles annonces qui y correspondent "
                       "apparaîtront dans « Avis »."),
    "supprimee": Msg("La recherche est supprimée."),
}  # fmt: skip


def in_words(search: SavedSearch) -> list[Msg | str]:
    """« jardinage · Service · à 5 km de votre travail »."""
    said: list[Msg | str] = []
    if search.words:
        said.append(search.words)
    if search.kind in KIND_NAMES:
        said.append(KIND_NAMES[search.kind])
    if search.category in CATEGORY_LABELS:
        said.append(Msg(CATEGORY_LABELS[search.category]))
    if search.around == "domicile":
        said.append(Msg("à %(n)s km de chez vous", n=search.radius_km))
    elif search.around == "travail":
        said.append(Msg("à %(n)s km de votre travail", n=search.radius_km))
    else:
        said.append(Msg("partout dans l'agglomération"))
    return said


def search_url(search: SavedSearch) -> str:
    """The home page's search that shows the saved search's annonces."""
    params = {"q": search.words, "type": PARAM_OF_KIND.get(search.kind or "", ""),
              "categorie": search.category or "", "autour": search.around or "",
              "rayon": str(search.radius_km) if search.radius_km else ""}  # fmt: skip
    return "/?" + urlencode({k: v for k, v in params.items() if v})


def _spec_of(data) -> SearchSpec:
    """The home page's parameters as a search to save; node.alerts checks them."""
    kind = data.get("type", "")
    radius = data.get("rayon", "")
    return SearchSpec(
        words=data.get("q", ""),
        kind=KIND_PARAMS[kind].value if kind in KIND_PARAMS else kind or None,
        category=data.get("categorie", "") or None,
        around=data.get("autour", "") or None,
        # ascii digits only: int() takes "²" and other digits
        radius_km=int(radius)
        if radius.isascii() and radius.isdigit() and len(radius) <= 4
        else None,
    )


async def _page(request: web.Request, member, *, refusal: Msg | None = None,
                back: str | None = None, status: int = 200) -> web.Response:  # fmt: skip
    searches = await alerts.saved_searches(request.app, member)
    return await render(request, "saved_searches.html", {
        "searches": [(s, in_words(s), search_url(s)) for s in searches], "refusal": refusal,
        "back": back, "done": DONE.get(request.query.get("fait", "")),
    }, status=status)  # fmt: skip


@routes.get("/recherches")
async def saved_searches(request: web.Request) -> web.Response:
    return await _page(request, require_member(request))


@routes.post("/recherches")
async def save(request: web.Request) -> web.Response:
    member = require_member(request)
    data = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
    spec = _spec_of(data)
    profile = await accounts.profile_of(request.app, member)
    try:
        await alerts.save_search(request.app, member, spec, profile)
    except SearchRefused as refused:
        fields = ("q", "type", "categorie", "autour", "rayon")
        back = "/?" + urlencode({k: data[k][:200] for k in fields if data.get(k)})
        return await _page(
            request, member, refusal=refused.reason, back=back, status=422
        )
    raise web.HTTPSeeOther("/recherches?fait=enregistree")


@routes.post("/recherches/{id}/supprimer")
async def delete(request: web.Request) -> web.Response:
    member = require_member(request)
    raw = request.match_info["id"]
    if not (raw.isascii() and raw.isdigit()) or len(raw) > MAX_ID_DIGITS:
        raise web.HTTPNotFound()
    if not await alerts.delete_search(request.app, member, int(raw)):
        raise web.HTTPNotFound()  # not one of the member's searches
    raise web.HTTPSeeOther("/recherches?fait=supprimee")
