"""While a resident writes a request: the offers already on the network that fit it, and why.

The preview of a request (node/web/posting.py) lists up to MAX_SUGGESTIONS
offers: the nearest SUGGESTION_CANDIDATES offers around the request's place
(storage.search), each compared with the request by node/matching.py, with
the distance to the resident's home or work in words.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from node.alerts import alert_state_key, distance_words, nearest_place, why_words
from node.clock import now
from node.i18n import Msg
from node.keys import communes_key, db_key, node_key_key
from node.matching import analyse, fit
from protocol.annonce import Kind, annonce_ref
from storage.db import Connection
from storage.search import Query, run_search

SUGGESTION_KM = 20  # offers looked at around the request's place
SUGGESTION_CANDIDATES = 400  # nearest offers compared, at most
MAX_SUGGESTIONS = 5


@dataclass(frozen=True, slots=True)
class Suggestion:
    ref: str
    title: str
    author_name: str
    commune: str | None
    why: Msg
    score: float


def _suggestions(conn: Connection, communes, query: Query, at: int):
    return run_search(conn, query, now=at, communes=communes.centres, weights=communes.populations)


async def suggest_offers(app: web.Application, member, draft, profile) -> list[Suggestion]:
    """The offers already on the network that fit a request being written, best first."""
    state = app[alert_state_key]
    communes = app[communes_key]
    point = draft.point
    origin = communes.origin_of(draft.commune, point.lat if point else None,
                                point.lon if point else None)  # fmt: skip
    # viewer: not the offers of members a block keeps the writer apart from (storage.blocks)
    query = Query(kind=Kind.OFFER, origin=origin, radius_km=SUGGESTION_KM if origin else None,
                  nearest=origin is not None, per_page=SUGGESTION_CANDIDATES,
                  viewer=(app[node_key_key].node_id, member.handle))  # fmt: skip
    page = await app[db_key].read(_suggestions, communes, query, now(app))
    needs = analyse(draft.title, draft.text, draft.category.value, Kind.REQUEST.value,
                    state.thesaurus)  # fmt: skip
    places = [(label, communes.origin_of(p.commune, p.lat, p.lon))
              for label, p in (("domicile", profile.home), ("travail", profile.work))]  # fmt: skip
    found: list[Suggestion] = []
    for hit in page.hits:
        if hit.author_name == member.display_name and hit.origin == app[node_key_key].node_id:
            continue
        offer = state.analysed(hit)
        fitting = fit(needs, offer)
        if fitting is None:
            continue
        near = nearest_place(places, communes.origin_of(hit.commune, hit.lat, hit.lon))
        distance = distance_words(near[1], near[0]) if near is not None else None
        found.append(Suggestion(annonce_ref(hit.origin, hit.uid), hit.title, hit.author_name,
                                communes.name(hit.commune), why_words(fitting, distance),
                                fitting.score))  # fmt: skip
    found.sort(key=lambda s: -s.score)
    return found[:MAX_SUGGESTIONS]
