"""The annonce form: what a resident types, checked field by field, as a Draft.

The place is one control (``commune``): "near my home", "near my work" (when
the profile has them) or a commune of the list, by name. Pages shown before
this form had a radio (``lieu``) and a list apart: what they send is still
understood. Dates are read as residents write them (``read_day``): 14/07/2026,
14/7/2026 or 2026-07-14, with or without a time. An annonce's language is the
page's: what a resident reads is most likely what they write.
"""

from __future__ import annotations

import datetime as dt
import re

from node.annonces import Draft
from node.i18n import Msg
from node.places import Communes
from node.web.forms import Form
from node.web.labels import CATEGORY_LABELS, KIND_LABELS
from node.web.render import PARIS
from protocol import limits
from protocol.annonce import Annonce, Category, Kind, Point
from storage.residents import Place, Profile

DURATIONS_DAYS = (7, 14, 30, 60, 90)
DEFAULT_DURATION_DAYS = 30
DEFAULT_SORTIE_TIME = dt.time(14, 0)
OWN_PLACES = ("domicile", "travail")
KEEP_PLACE = "actuel"  # editing: the annonce's point stays where it is
FIELDS = ("type", "categorie", "titre", "texte", "commune", "duree", "sortie_date", "sortie_heure")

assert max(DURATIONS_DAYS) * 86400 <= limits.MAX_LIFETIME_S

_DAY_FIRST = re.compile(r"(\d{1,2})\s*[/.\-]\s*(\d{1,2})\s*[/.\-]\s*(\d{4}|\d{2})")
_YEAR_FIRST = re.compile(r"(\d{4})\s*-\s*(\d{1,2})\s*-\s*(\d{1,2})")
_TIME = re.compile(r"(\d{1,2})\s*(?:[:h.]\s*(\d{2})?)?", re.IGNORECASE)
_DAY_AND_TIME = re.compile(r"^(?P<day>[\d/.\-\s]+?)(?:\s*(?:[àa]|,|t)?\s+|T)(?P<time>\d{1,2}\s*(?:[:h.]\s*\d{0,2})?)$",
                           re.IGNORECASE)  # fmt: skip


def read_day(text: str) -> dt.date | None:
    """A date as residents write it: 14/07/2026, 14/7/26, 14.07.2026, 2026-07-14."""
    text = text.strip()
    found = _DAY_FIRST.fullmatch(text)
    try:
        if found:
            day, month, year = (int(part) for part in found.groups())
            return dt.date(year + 2000 if year < 100 else year, month, day)
        found = _YEAR_FIRST.fullmatch(text)
        if found:
            year, month, day = (int(part) for part in found.groups())
            return dt.date(year, month, day)
    except ValueError:  # 31/02, month 13
        return None
    return None


def read_time(text: str) -> dt.time | None:
    """A time as residents write it: 15:30, 15h30, 15 h, 9h."""
    found = _TIME.fullmatch(text.strip())
    if not found:
        return None
    hour, minute = int(found.group(1)), int(found.group(2) or 0)
    return dt.time(hour, minute) if hour < 24 and minute < 60 else None


def _split_day_and_time(text: str) -> tuple[str, str]:
    """'14/07/2026 à 15h' -> ('14/07/2026', '15h'); a date alone stays alone."""
    text = text.strip()
    if read_day(text) is not None:
        return text, ""
    found = _DAY_AND_TIME.fullmatch(text)
    return (found.group("day"), found.group("time")) if found else (text, "")


def own_place_error(where: str, place: Place, communes: Communes) -> Msg | None:
    """Why a profile's place cannot be an annonce's place, if it cannot."""
    if not place.is_set and where == "domicile":
        return Msg("Votre domicile n'est pas indiqué dans votre profil : choisissez une commune de la liste, ou complétez votre profil.")
    if not place.is_set:
        return Msg("Votre lieu de travail n'est pas indiqué dans votre profil : choisissez une commune de la liste, ou complétez votre profil.")
    if place.commune is None and not communes.near(place.lat, place.lon):
        return Msg("Le lieu de votre profil est en dehors de l'agglomération : choisissez une commune de la liste.")
    return None


def _place(form: Form, profile: Profile, communes: Communes,
           current: Annonce | None) -> tuple[str | None, Point | None]:  # fmt: skip
    where = form.raw("commune")
    if form.raw("lieu") in OWN_PLACES:  # the radio of pages shown before the single list
        where = form.raw("lieu")
    form.values["commune"] = where
    if where == KEEP_PLACE and current is not None and current.point is not None:
        return None, current.point
    if where in OWN_PLACES:
        place: Place = profile.home if where == "domicile" else profile.work
        refusal = own_place_error(where, place, communes)
        if refusal is not None:
            form.error("commune", refusal)
            return None, None
        if place.commune:
            return place.commune, None
        return None, Point(place.lat, place.lon)
    if not where:
        form.error("commune", Msg("Choisissez où a lieu l'échange : une commune de la liste, ou près de chez vous."))
        return None, None
    if where not in communes:
        form.error("commune", Msg("Choisissez la commune dans la liste."))
        return None, None
    return where, None


def _sortie_at(form: Form, now: int) -> int | None:
    day_text, hour_text = form.raw("sortie_date").strip(), form.raw("sortie_heure").strip()
    form.values.update(sortie_date=day_text, sortie_heure=hour_text)
    if not day_text:
        form.error("sortie_date", Msg("Indiquez la date de la sortie."))
        return None
    day_text, typed_hour = _split_day_and_time(day_text)
    hour_text = hour_text or typed_hour
    date = read_day(day_text)
    if date is None:
        form.error("sortie_date", Msg("Saisissez une date réelle, par exemple 14/07/2026."))
        return None
    form.values.update(sortie_date=date.isoformat())  # what a date field shows again
    time = read_time(hour_text) if hour_text else DEFAULT_SORTIE_TIME
    if time is None:
        form.error("sortie_heure", Msg("Saisissez une heure, par exemple 14:30 ou 14h30."))
        return None
    form.values.update(sortie_heure=time.strftime("%H:%M"))
    when = int(dt.datetime.combine(date, time, PARIS).timestamp())
    if when <= now:
        form.error("sortie_date", Msg("Cette date est passée : la sortie doit avoir lieu plus tard."))
    elif when > now + limits.MAX_SORTIE_AHEAD_S:
        form.error("sortie_date", Msg("La sortie doit avoir lieu dans l'année qui vient."))
    return when


def read_annonce_form(
    data, profile: Profile, communes: Communes, now: int, *, with_duration: bool = True,
    lang: str = "fr", current: Annonce | None = None,
) -> tuple[Form, Draft | None]:  # fmt: skip
    """The form's values checked, and the draft if they are right (``current``: when editing)."""
    form = Form(data)
    kind = form.choice("type", KIND_LABELS)
    category = form.choice("categorie", CATEGORY_LABELS)
    title = form.text("titre", required=True, min_chars=limits.MIN_TITLE_CHARS,
                      max_chars=limits.MAX_TITLE_CHARS)  # fmt: skip
    text = form.text("texte", required=True, max_chars=limits.MAX_TEXT_CHARS, multiline=True)
    commune, point = _place(form, profile, communes, current)
    days = DEFAULT_DURATION_DAYS
    if with_duration:
        days = form.integer("duree", minimum=1, maximum=limits.MAX_LIFETIME_S // 86400,
                            default=DEFAULT_DURATION_DAYS)  # fmt: skip
    sortie_at = _sortie_at(form, now) if category == Category.SORTIE.value else None
    if not form.ok:
        return form, None
    draft = Draft(kind=Kind(kind), category=Category(category), title=title, text=text,
                  commune=commune, point=point, lang=lang, days=days or DEFAULT_DURATION_DAYS,
                  sortie_at=sortie_at)  # fmt: skip
    return form, draft


def chars_to_cut(text: str, over_bytes: int) -> int:
    """How many characters to take off the end of ``text`` to save ``over_bytes`` bytes."""
    saved = 0
    for count, char in enumerate(reversed(text), start=1):
        saved += len(char.encode("utf-8"))
        if saved >= over_bytes:
            return count
    return len(text)


def too_long(form: Form, text: str, over_bytes: int) -> None:
    """Explain, next to the description, that the annonce is too large to travel."""
    n = chars_to_cut(text, over_bytes)
    form.error("texte", Msg("Ce texte est trop long pour être envoyé aux autres associations : les lettres accentuées et les émojis y prennent plus de place que les autres caractères. Raccourcissez-le d'au moins %(n)s caractères.",
                            n=n))  # fmt: skip


def form_from_annonce(annonce, profile: Profile) -> Form:
    """The edit form, filled with an annonce's current values."""
    form = Form()
    where = annonce.commune or ""
    if annonce.point is not None:
        where = KEEP_PLACE
        for name, place in (("domicile", profile.home), ("travail", profile.work)):
            if place.lat == annonce.point.lat and place.lon == annonce.point.lon:
                where = name
    values = {
        "type": annonce.kind.value, "categorie": annonce.category.value,
        "titre": annonce.title, "texte": annonce.text, "commune": where,
    }  # fmt: skip
    if annonce.sortie_at:
        local = dt.datetime.fromtimestamp(annonce.sortie_at, PARIS)
        values.update(sortie_date=local.date().isoformat(), sortie_heure=local.strftime("%H:%M"))
    form.values.update(values)
    return form
