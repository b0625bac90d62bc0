"""The member's profile: name, presentation, skills, and home and work places.

Each place is one list: not given, or a commune of the agglomeration, by
name. A coarse point stored before (hundredths of a degree, about a
kilometre) is kept while the member leaves it chosen ("the place already
recorded, near …"), and refused with a reason if it lies outside the
agglomeration. Places serve to measure distances and are never shown to
anyone else; residents never see or type degrees.
"""

from __future__ import annotations

from aiohttp import web

from node import accounts, thanks
from node.i18n import Msg
from node.keys import communes_key, node_key_key
from node.web.common import neighbour_path, place_label, require_member
from node.web.forms import Form
from node.web.keys import member_rkey
from node.web.render import render
from protocol import limits
from storage.residents import Place, Profile

routes = web.RouteTableDef()

MAX_PRESENTATION_CHARS = 1000
MAX_SKILLS_CHARS = 500
KEEP = "actuel"  # the point already recorded


def _read_place(form: Form, name: str, current: Place, communes) -> Place:
    if name not in form.data:  # a page without this list: the place stays as it is
        return current
    value = form.raw(name)
    form.values[name] = value
    if not value:
        return Place()
    if value == KEEP and current.is_set:
        if current.commune is None and not communes.near(current.lat, current.lon):
            form.error(name, Msg("Le lieu enregistré est en dehors de l'agglomération : choisissez une commune de la liste."))
        return current
    if value not in communes:
        form.error(name, Msg("Choisissez la commune dans la liste."))
        return current
    return Place(commune=value)


def _form_of(member, profile: Profile) -> Form:
    form = Form()
    form.values.update(nom=member.display_name, presentation=profile.presentation,
                       competences=profile.skills)  # fmt: skip
    for name, place in (("domicile", profile.home), ("travail", profile.work)):
        form.values[name] = place.commune or (KEEP if place.lat is not None else "")
    return form


def _kept_points(request, profile: Profile) -> dict[str, object]:
    """A label for each place recorded as a point, offered to keep it."""
    kept = {}
    for name, place in (("domicile", profile.home), ("travail", profile.work)):
        if place.commune is None and place.lat is not None:
            kept[name] = Msg("Le lieu déjà enregistré (%(place)s)", place=place_label(request, place))
    return kept


async def _page(request, form, profile, *, status=200):
    own, member = request.app[node_key_key].node_id, request[member_rkey]
    return await render(request, "profile.html", {
        "thanks": await thanks.profile_of(request.app, own, member.handle),
        "neighbour_page": neighbour_path(own, member.handle),
        "form": form, "nav": "profile", "communes": request.app[communes_key],
        "welcome": "bienvenue" in request.query, "kept": _kept_points(request, profile),
        "KEEP": KEEP,
    }, status=status)  # fmt: skip


@routes.get("/profil")
async def profile_form(request: web.Request) -> web.Response:
    member = require_member(request)
    profile = await accounts.profile_of(request.app, member)
    return await _page(request, _form_of(member, profile), profile)


@routes.post("/profil")
async def save(request: web.Request) -> web.Response:
    member = require_member(request)
    form = Form(await request.post())
    communes = request.app[communes_key]
    current = await accounts.profile_of(request.app, member)
    name = form.text("nom", required=True, max_chars=limits.MAX_DISPLAY_NAME_CHARS)
    presentation = form.text("presentation", max_chars=MAX_PRESENTATION_CHARS, multiline=True)
    skills = form.text("competences", max_chars=MAX_SKILLS_CHARS, multiline=True)
    profile = Profile(presentation, skills, _read_place(form, "domicile", current.home, communes),
                      _read_place(form, "travail", current.work, communes))  # fmt: skip
    if not form.ok:
        return await _page(request, form, current, status=422)
    await accounts.save_profile(request.app, member, name, profile)
    raise web.HTTPSeeOther("/profil?enregistre=1")
