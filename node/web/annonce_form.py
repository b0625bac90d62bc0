"""The annonce form: what a resident types, checked field by field, as a Draft."""

from __future__ import annotations

import datetime as dt

from node.annonces import Draft
from node.i18n import Msg
from node.web.forms import Form
from node.web.labels import CATEGORY_LABELS, KIND_LABELS
from node.web.places import Communes
from node.web.render import PARIS
from protocol import limits
from protocol.annonce import Category, Kind, Point
from storage.residents import Place, Profile

DURATIONS_DAYS = (7, 14, 30, 60, 90)
DEFAULT_DURATION_DAYS = 30
PLACE_CHOICES = ("domicile", "travail", "commune")
FIELDS = ("type", "categorie", "titre", "texte", "lieu", "commune", "duree",
          "sortie_date", "sortie_heure")  # fmt: skip

assert max(DURATIONS_DAYS) * 86400 <= limits.MAX_LIFETIME_S


def _place(form: Form, profile: Profile, communes: Communes) -> tuple[str | None, Point | None]:
    where = form.choice("lieu", PLACE_CHOICES)
    commune_code = form.raw("commune")
    form.values["commune"] = commune_code
    if where == "commune":
        if commune_code not in communes:
            form.error("commune", Msg("Choisissez la commune dans la liste."))
            return None, None
        return commune_code, None
    if where in ("domicile", "travail"):
        place: Place = profile.home if where == "domicile" else profile.work
        if not place.is_set:
            form.error("lieu", Msg("Ce lieu n'est pas indiqué dans votre profil : choisissez une commune, ou complétez votre profil."))
            return None, None
        if place.commune:
            return place.commune, None
        return None, Point(place.lat, place.lon)
    return None, None


def _sortie_at(form: Form, now: int) -> int | None:
    day, hour = form.raw("sortie_date").strip(), form.raw("sortie_heure").strip()
    form.values.update(sortie_date=day, sortie_heure=hour)
    if not day:
        form.error("sortie_date", Msg("Indiquez la date de la sortie."))
        return None
    try:
        date = dt.date.fromisoformat(day)
        time = dt.time.fromisoformat(hour) if hour else dt.time(14, 0)
    except ValueError:
        form.error("sortie_date", Msg("Saisissez une date valide, par exemple 14/07/2026."))
        return None
    when = int(dt.datetime.combine(date, time, PARIS).timestamp())
    if when <= now:
        form.error("sortie_date", Msg("La sortie doit avoir lieu dans le futur."))
    elif when > now + limits.MAX_SORTIE_AHEAD_S:
        form.error("sortie_date", Msg("La sortie doit avoir lieu dans l'année qui vient."))
    return when


def read_annonce_form(
    data, profile: Profile, communes: Communes, now: int, *, with_duration: bool = True
) -> tuple[Form, Draft | None]:
    form = Form(data)
    kind = form.choice("type", KIND_LABELS)
    category = form.choice("categorie", CATEGORY_LABELS)
    title = form.text("titre", required=True, min_chars=limits.MIN_TITLE_CHARS,
                      max_chars=limits.MAX_TITLE_CHARS)  # fmt: skip
    text = form.text("texte", required=True, max_chars=limits.MAX_TEXT_CHARS, multiline=True)
    commune, point = _place(form, profile, communes)
    days = DEFAULT_DURATION_DAYS
    if with_duration:
        days = form.integer("duree", minimum=1, maximum=limits.MAX_LIFETIME_S // 86400,
                            default=DEFAULT_DURATION_DAYS)  # fmt: skip
    sortie_at = _sortie_at(form, now) if category == Category.SORTIE.value else None
    if not form.ok:
        return form, None
    draft = Draft(kind=Kind(kind), category=Category(category), title=title, text=text,
                  commune=commune, point=point, days=days or DEFAULT_DURATION_DAYS,
                  sortie_at=sortie_at)  # fmt: skip
    return form, draft


def form_from_annonce(annonce, profile: Profile) -> Form:
    """The edit form, filled with an annonce's current values."""
    form = Form()
    where = "commune"
    if annonce.point is not None:
        for name, place in (("domicile", profile.home), ("travail", profile.work)):
            if place.lat == annonce.point.lat and place.lon == annonce.point.lon:
                where = name
    values = {
        "type": annonce.kind.value, "categorie": annonce.category.value,
        "titre": annonce.title, "texte": annonce.text, "lieu": where,
        "commune": annonce.commune or "",
    }  # fmt: skip
    if annonce.sortie_at:
        local = dt.datetime.fromtimestamp(annonce.sortie_at, PARIS)
        values.update(sortie_date=local.date().isoformat(), sortie_heure=local.strftime("%H:%M"))
    form.values.update(values)
    return form
