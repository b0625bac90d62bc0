"""The member's profile: name, presentation, skills, and home and work places.

Places are a commune of the agglomeration or a coarse point (hundredths of a
degree, about a kilometre); they serve to measure distances and are never
shown to anyone else.
"""

from __future__ import annotations

from aiohttp import web

from node import accounts
from node.i18n import Msg
from node.web.common import place_label, require_member
from node.web.forms import Form
from node.web.keys import communes_key
from node.web.render import render
from protocol import limits
from storage.residents import Place, Profile

routes = web.RouteTableDef()

MAX_PRESENTATION_CHARS = 1000
MAX_SKILLS_CHARS = 500
PLACE_KINDS = ("aucun", "commune", "point")


def _read_place(form: Form, prefix: str, communes) -> Place:
    kind = form.choice(f"{prefix}_type", PLACE_KINDS) or "aucun"
    code = form.raw(f"{prefix}_commune")
    form.values[f"{prefix}_commune"] = code
    if kind == "commune":
        if code not in communes:
            form.error(f"{prefix}_commune", Msg("Choisissez la commune dans la liste."))
            return Place()
        return Place(commune=code)
    if kind == "point":
        coords = []
        for axis, bound in (("lat", 90), ("lon", 180)):
            name = f"{prefix}_{axis}"
            text = form.raw(name).strip().replace(",", ".")
            form.values[name] = text
            try:
                value = float(text)
            except ValueError:
                form.error(name, Msg("Saisissez un nombre, par exemple 44.20."))
                continue
            if not -bound <= value <= bound:
                form.error(name, Msg("Saisissez un nombre entre %(min)s et %(max)s.",
                                     min=-bound, max=bound))  # fmt: skip
                continue
            coords.append(round(value * limits.POINT_SCALE))
        if len(coords) == 2:
            return Place(lat=coords[0], lon=coords[1])
    return Place()


def _form_of(member, profile: Profile) -> Form:
    form = Form()
    form.values.update(nom=member.display_name, presentation=profile.presentation,
                       competences=profile.skills)  # fmt: skip
    for prefix, place in (("domicile", profile.home), ("travail", profile.work)):
        kind = "commune" if place.commune else "point" if place.lat is not None else "aucun"
        form.values[f"{prefix}_type"] = kind
        form.values[f"{prefix}_commune"] = place.commune or ""
        if place.lat is not None:
            form.values[f"{prefix}_lat"] = f"{place.lat / 100:.2f}"
            form.values[f"{prefix}_lon"] = f"{place.lon / 100:.2f}"
    return form


async def _page(request, form, profile, *, status=200, saved=False):
    return await render(request, "profile.html", {
        "form": form, "nav": "profile", "communes": request.app[communes_key], "saved": saved,
        "welcome": "bienvenue" in request.query,
        "home_label": place_label(request, profile.home),
        "work_label": place_label(request, profile.work),
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
    name = form.text("nom", required=True, max_chars=limits.MAX_DISPLAY_NAME_CHARS)
    presentation = form.text("presentation", max_chars=MAX_PRESENTATION_CHARS, multiline=True)
    skills = form.text("competences", max_chars=MAX_SKILLS_CHARS, multiline=True)
    profile = Profile(presentation, skills, _read_place(form, "domicile", communes),
                      _read_place(form, "travail", communes))  # fmt: skip
    if not form.ok:
        current = await accounts.profile_of(request.app, member)
        return await _page(request, form, current, status=422)
    await accounts.save_profile(request.app, member, name, profile)
    raise web.HTTPSeeOther("/profil?enregistre=1")
