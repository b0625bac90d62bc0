"""Finding annonces: the home page lists and searches every annonce the node holds."""

from __future__ import annotations

from dataclasses import dataclass, replace

from aiohttp import web

from node.clock import now
from node.i18n import Msg
from node.keys import communes_key, db_key, node_key_key
from node.web.cards import cards_for
from node.web.common import association_namer, place_origin
from node.web.keys import member_rkey, page_cache_key, peer_names_key, translator_rkey
from node.web.labels import CATEGORY_LABELS
from node.web.render import Unread, render, unread_of
from protocol.annonce import Category, Kind
from storage import blocks as block_store
from storage import residents
from storage.search import Query, ResultPage, run_search

routes = web.RouteTableDef()

PER_PAGE = 20
RADII_KM = (1, 2, 5, 10, 20, 30, 50)
DEFAULT_RADIUS_KM = 5
KIND_PARAMS = {"offre": Kind.OFFER, "demande": Kind.REQUEST}
AROUND_PLACES = ("domicile", "travail")


@dataclass(frozen=True, slots=True)
class _PageData:
    profile: residents.Profile | None
    query: Query
    values: dict
    notices: list[Msg]
    result: ResultPage
    names: dict[bytes, str]
    unread: Unread


def _page_data(conn, request: web.Request, member, now: int) -> _PageData:
    """Everything the page reads, in one visit to the database."""
    profile = residents.get_profile(conn, member.id) if member else None
    query, values, notices, distance_from = read_query(request, profile)
    own = request.app[node_key_key].node_id
    if member and block_store.any_apart(conn, block_store.Who(own, member.handle)):
        query = replace(query, viewer=(own, member.handle))
    communes = request.app[communes_key]
    result = run_search(conn, query, now=now, communes=communes.centres,
                        distance_from=distance_from, weights=communes.populations)  # fmt: skip
    names = request.app[peer_names_key].get(conn)
    unread = unread_of(conn, member.id) if member else Unread()
    return _PageData(profile, query, values, notices, result, names, unread)


def search_values(params, communes) -> dict[str, str]:
    """The search form's values from the URL, checked: a wrong value is left empty.

    ``autour`` is kept as sent: what it means depends on who asks (read_query).
    The feeds (node/web/feeds.py) read the same values.
    """
    values = {
        "q": params.get("q", "")[:200],
        "type": params.get("type", "") if params.get("type") in KIND_PARAMS else "",
        "categorie": params.get("categorie", "") if params.get("categorie") in CATEGORY_LABELS else "",
        "commune": params.get("commune", "") if params.get("commune") in communes else "",
        "autour": params.get("autour", ""),
        "rayon": params.get("rayon", str(DEFAULT_RADIUS_KM)),
        "tri": "proche" if params.get("tri") == "proche" else "recent",
    }  # fmt: skip
    # Compared as text: int() fails on some digits ("²") and on very long numbers.
    if values["rayon"] not in {str(r) for r in RADII_KM}:
        values["rayon"] = str(DEFAULT_RADIUS_KM)
    return values


def read_query(request: web.Request, profile) -> tuple[Query, dict, list[Msg], object]:
    """The search form's values from the URL, checked; wrong values are ignored."""
    params = request.query
    notices: list[Msg] = []
    values = search_values(params, request.app[communes_key])
    radius = int(values["rayon"])
    page_text = params.get("page", "1")
    page = int(page_text) if page_text.isascii() and page_text.isdigit() and len(page_text) <= 2 \
        and 0 < int(page_text) <= 50 else 1  # fmt: skip
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


@routes.get("/", name="home")
async def home(request: web.Request) -> web.Response:
    member = request[member_rkey]
    cache_key = (request.path_qs, request[translator_rkey].lang)
    if member is None:
        cached = request.app[page_cache_key].get(cache_key)
        if cached is not None:
            return web.Response(text=cached, content_type="text/html", charset="utf-8")
    at = now(request.app)
    data = await request.app[db_key].read(_page_data, request, member, at)
    t = request[translator_rkey]
    values, query, result = data.values, data.query, data.result
    searching = any(values[k] for k in ("q", "type", "categorie", "commune", "autour"))
    base = {k: v for k, v in values.items() if v and k != "page"}
    communes = request.app[communes_key]
    response = await render(request, "index.html", {
        "result": result,
        "cards": cards_for(result.hits, t=t, communes=communes, now=at,
                           association=association_namer(request, data.names)),
        "query": query,
        "values": values,
        "notices": data.notices,
        "searching": searching,
        "communes": communes,
        "categories": CATEGORY_LABELS,
        "radii": RADII_KM,
        "profile": data.profile,
        "logged_out": member is None and "deconnecte" in request.query,
        "prev_params": {**base, "page": query.page - 1} if query.page > 1 else None,
        "next_params": {**base, "page": query.page + 1} if result.has_next else None,
    }, unread=data.unread)  # fmt: skip
    if member is None:
        request.app[page_cache_key].put(cache_key, response.text)
    return response
