"""Finding annonces: the home page lists and searches every annonce the node holds."""

from __future__ import annotations

from aiohttp import web

from node.i18n import Msg
from node.web.common import association_namer, peer_names, place_origin
from node.web.keys import communes_key, member_rkey, page_cache_key, reader_key, translator_rkey
from node.web.labels import CATEGORY_LABELS, KIND_BADGES
from node.web.render import now_of, render
from protocol.annonce import Category, Kind
from storage import residents
from storage.search import Query, run_search

routes = web.RouteTableDef()

PER_PAGE = 20
RADII_KM = (1, 2, 5, 10, 20, 30, 50)
DEFAULT_RADIUS_KM = 5
KIND_PARAMS = {"offre": Kind.OFFER, "demande": Kind.REQUEST}
AROUND_PLACES = ("domicile", "travail")


def _search_page(conn, query, now, communes, distance_from):
    """Everything the page reads, in one visit to the database."""
    page = run_search(conn, query, now=now, communes=communes.centres,
                      distance_from=distance_from, weights=communes.populations)  # fmt: skip
    return page, peer_names(conn)


def read_query(request: web.Request, profile) -> tuple[Query, dict, list[Msg], object]:
    """The search form's values from the URL, checked; wrong values are ignored."""
    params = request.query
    notices: list[Msg] = []
    values = {
        "q": params.get("q", "")[:200],
        "type": params.get("type", "") if params.get("type") in KIND_PARAMS else "",
        "categorie": params.get("categorie", "") if params.get("categorie") in CATEGORY_LABELS else "",
        "commune": params.get("commune", "") if params.get("commune") in request.app[communes_key] else "",
        "autour": params.get("autour", ""),
        "rayon": params.get("rayon", str(DEFAULT_RADIUS_KM)),
        "tri": "proche" if params.get("tri") == "proche" else "recent",
    }  # fmt: skip
    radius = int(values["rayon"]) if values["rayon"].isdigit() else DEFAULT_RADIUS_KM
    radius = radius if radius in RADII_KM else DEFAULT_RADIUS_KM
    values["rayon"] = str(radius)
    page_text = params.get("page", "1")
    page = int(page_text) if page_text.isdigit() and 0 < int(page_text) <= 50 else 1
    origin = None
    around = values["autour"]
    if around in AROUND_PLACES:
        if profile is None:
            notices.append(Msg("Connectez-vous pour chercher autour de votre domicile ou de votre travail."))
        else:
            place = profile.home if around == "domicile" else profile.work
            origin = place_origin(request, place)
            if origin is None:
                notices.append(Msg("Indiquez d'abord ce lieu dans votre profil."))
    elif around in request.app[communes_key]:
        origin = place_origin(request, residents.Place(commune=around))
    else:
        values["autour"] = ""
    if origin is None and values["tri"] == "proche":
        values["tri"] = "recent"
    home = place_origin(request, profile.home) if profile else None
    query = Query(
        text=values["q"],
        kind=KIND_PARAMS.get(values["type"]),
        category=Category(values["categorie"]) if values["categorie"] else None,
        commune=values["commune"] or None,
        origin=origin,
        radius_km=radius if origin else None,
        nearest=values["tri"] == "proche",
        page=page,
        per_page=PER_PAGE,
    )
    return query, values, notices, origin or home


def excerpt(text: str, limit: int = 200) -> str:
    """The start of a text, cut at a word, with an ellipsis if it goes on."""
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + "…"


@routes.get("/", name="home")
async def home(request: web.Request) -> web.Response:
    member = request[member_rkey]
    cache_key = (request.path_qs, request[translator_rkey].lang)
    if member is None:
        cached = request.app[page_cache_key].get(cache_key)
        if cached is not None:
            return web.Response(text=cached, content_type="text/html", charset="utf-8")
    reader = request.app[reader_key]
    profile = await reader.run(residents.get_profile, member.id) if member else None
    query, values, notices, distance_from = read_query(request, profile)
    communes = request.app[communes_key]
    result, names = await reader.run(
        _search_page, query, now_of(request), communes, distance_from
    )
    t = request[translator_rkey]
    searching = any(values[k] for k in ("q", "type", "categorie", "commune", "autour"))
    base = {k: v for k, v in values.items() if v and k != "page"}
    response = await render(request, "index.html", {
        "result": result,
        "query": query,
        "values": values,
        "notices": notices,
        "searching": searching,
        "communes": communes,
        "categories": CATEGORY_LABELS,
        "kinds": KIND_BADGES,
        "radii": RADII_KM,
        "association": association_namer(request, names),
        "kind_labels": {k: t.gettext(v) for k, v in KIND_BADGES.items()},
        "category_labels": {k: t.gettext(v) for k, v in CATEGORY_LABELS.items()},
        "approximate": t.gettext("Lieu approximatif"),
        "excerpt": excerpt,
        "profile": profile,
        "prev_params": {**base, "page": query.page - 1} if query.page > 1 else None,
        "next_params": {**base, "page": query.page + 1} if result.has_next else None,
    })  # fmt: skip
    if member is None:
        request.app[page_cache_key].put(cache_key, response.text)
    return response
