"""The photos of the annonce form: four places (slots), each a photo kept or a file to send.

Each slot ``i`` has a file field (``photo_i``), a description (``photo_i_description``,
required with a photo: it is the ``alt`` text screen readers say), and, once a
photo was received, a hidden reference to it (``photo_i_garde``) and a box to
take it away (``photo_i_retirer``). A file sent is made into the kept photo
(node.imaging, in a worker thread, at most ``PROCESSING_AT_ONCE`` at a time)
and stored (node.photos.keep_own) before the annonce exists: the preview and a
form shown again with an error refer to it by its reference, so the resident
never sends the same photo twice, and nothing typed is lost.

A reference names the photo's hash, size and sides, with an HMAC of this node
for this member: a form cannot bind to an annonce a photo this node did not
make for the member, nor claim other sides than it has. The references are
the draft's values (storage.forms keeps them with the text for the preview).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web

from node import imaging, photo_files, photos
from node.i18n import Msg, Translator
from node.web import uploads
from node.web.forms import Form
from node.web.keys import csrf_secret_key
from node.web.uploads import BadForm, Posted
from protocol import limits
from protocol.annonce import Photo

PROCESSING_AT_ONCE = 2  # photos made at once by this node: one may take 430 MB while it is
SLOTS = tuple(range(1, limits.MAX_PHOTOS + 1))
REMOVE = "oui"
_MAC_BYTES = 16

REFUSALS = {
    "too-large": Msg("Cette photo est trop lourde (12 Mo au plus). Choisissez-en une autre, ou la même en taille réduite."),
    "not-an-image": Msg("Ce fichier n'est pas une photo. Choisissez une photo (JPEG, PNG, WebP ou HEIC)."),
    "truncated": Msg("Cette photo est incomplète : l'envoi a peut-être été interrompu. Choisissez-la de nouveau."),
    "too-many-pixels": Msg("Cette image est trop grande pour être lue. Choisissez une photo plus petite."),
    "too-narrow": Msg("Cette image est trop étroite et trop longue pour être montrée. Choisissez une autre photo."),
}  # fmt: skip
_UNREADABLE = Msg("Cette photo n'a pas pu être lue. Choisissez-en une autre.")
_TOO_MANY = Msg("Une annonce a 4 photos au plus : les photos en trop n'ont pas été reçues.")
_GONE = Msg("Cette photo n'est plus là : elle attendait depuis trop longtemps. Choisissez-la de nouveau.")  # fmt: skip
_TWICE = Msg("Cette photo est déjà dans l'annonce. Choisissez-en une autre.")
_DESCRIBE = Msg("Décrivez la photo en quelques mots, pour les personnes qui ne la voient pas. Une description vous est proposée : vérifiez-la.")  # fmt: skip

processing_key = web.AppKey("processing_key", asyncio.Semaphore)


def file_field(i: int) -> str:
    return f"photo_{i}"


def alt_field(i: int) -> str:
    return f"photo_{i}_description"


def kept_field(i: int) -> str:
    return f"photo_{i}_garde"


def remove_field(i: int) -> str:
    return f"photo_{i}_retirer"


# What a draft keeps of the photos, beside the text (node/web/posting.py)
FIELDS = tuple(name for i in SLOTS for name in (kept_field(i), alt_field(i)))


def setup(app: web.Application) -> None:
    app[processing_key] = asyncio.Semaphore(PROCESSING_AT_ONCE)
    uploads.setup(app)


def suggested_alt(t: Translator, title: str) -> str:
    """The description offered for a photo: the annonce's title, which it most often shows."""
    title = " ".join(title.split())
    if not title:
        return t.gettext(Msg("Photo de l'annonce"))
    return t.gettext(Msg("Photo : %(title)s", title=title))[: limits.MAX_PHOTO_ALT_CHARS]


# --- References to kept photos ----------------------------------------------------------


def _secret(app: web.Application) -> bytes:
    return hmac.new(app[csrf_secret_key], b"troc-web-photo-ref-v1", hashlib.sha256).digest()


def _mac(app: web.Application, member_id: int, body: str) -> str:
    mac = hmac.new(_secret(app), f"{member_id}|{body}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:_MAC_BYTES]).rstrip(b"=").decode("ascii")


def reference(app: web.Application, member_id: int, photo: Photo) -> str:
    """The hidden field's value naming a photo kept for this member."""
    body = f"{photo.sha256.hex()}.{photo.size}.{photo.width}.{photo.height}"
    return f"{body}.{_mac(app, member_id, body)}"


def read_reference(app: web.Application, member_id: int, text: str) -> Photo | None:
    """The photo a reference names (its description empty), or None if it is not one of ours."""
    parts = text.split(".")
    if len(parts) != 5 or len(text) > 200:
        return None
    body, mac = ".".join(parts[:4]), parts[4]
    if not hmac.compare_digest(mac.encode(), _mac(app, member_id, body).encode()):
        return None
    hexa, size, width, height = parts[:4]
    return Photo(bytes.fromhex(hexa), int(size), int(width), int(height), "")


# --- Reading the slots ------------------------------------------------------------------


async def _keep(app: web.Application, data: bytes) -> Photo:
    """The photo made from a file sent, stored; PhotoRefused if it cannot be one."""
    async with app[processing_key]:
        processed = await asyncio.to_thread(imaging.process, data)
    sha256 = await photos.keep_own(app, processed)
    return Photo(sha256, len(processed.full), processed.width, processed.height, "")


async def _slot_photo(app, member_id: int, form: Form, posted: Posted, i: int) -> Photo | None:
    name, ref = file_field(i), form.raw(kept_field(i))
    kept = read_reference(app, member_id, ref) if ref else None
    if ref and kept is None:
        raise BadForm(reason="a photo reference this node did not make")
    if posted.too_large == name:
        form.error(name, REFUSALS["too-large"])
    data = posted.files.get(name)
    if data:
        try:
            return await _keep(app, data)
        except imaging.PhotoRefused as refused:
            form.error(name, REFUSALS.get(refused.reason, _UNREADABLE))
    if form.raw(remove_field(i)) == REMOVE or kept is None:
        return None
    if not photo_files.file_path(photos.data_dir(app), kept.sha256).is_file():
        form.error(name, _GONE)  # an upload never published, deleted after a day
        return None
    return kept


async def read_photos(app: web.Application, member_id: int, form: Form, posted: Posted,
                      suggestion: str) -> tuple[Photo, ...]:  # fmt: skip
    """The form's photos, in the order of their slots; errors go next to their fields.

    A photo without its description gets ``suggestion`` to check, and an error.
    """
    found: list[Photo] = []
    for i in SLOTS:
        photo = await _slot_photo(app, member_id, form, posted, i)
        alt = form.text(alt_field(i), max_chars=limits.MAX_PHOTO_ALT_CHARS)
        if photo is None:
            form.values.update({kept_field(i): "", alt_field(i): ""})
            continue
        form.values[kept_field(i)] = reference(app, member_id, photo)
        if photo.sha256 in {other.sha256 for other in found}:
            form.values.update({kept_field(i): "", alt_field(i): ""})
            form.error(file_field(i), _TWICE)
            continue
        if not alt:
            form.values[alt_field(i)] = suggestion
            form.error(alt_field(i), _DESCRIBE)
        found.append(Photo(photo.sha256, photo.size, photo.width, photo.height, alt))
    if posted.too_many:
        form.error("photos", _TOO_MANY)
    return tuple(found)


def fill(app: web.Application, member_id: int, form: Form, kept: Sequence[Photo]) -> None:
    """The edit form's slots, filled with an annonce's photos."""
    for i, photo in zip(SLOTS, kept, strict=False):
        form.values.update({kept_field(i): reference(app, member_id, photo),
                            alt_field(i): photo.alt})  # fmt: skip


# --- Showing the slots ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Slot:
    index: int
    file: str           # the field names, for the template
    alt: str
    kept: str
    remove: str
    photo: Photo | None  # the photo kept in this slot, if any
    card_src: str
    card_width: int
    card_height: int


def card_size(width: int, height: int) -> tuple[int, int]:
    """The card's sides for a photo's: the long side CARD_PHOTO_SIDE at most."""
    scale = min(1.0, imaging.CARD_PHOTO_SIDE / max(width, height, 1))
    return max(1, round(width * scale)), max(1, round(height * scale))


def slots(app: web.Application, member_id: int, form: Form) -> list[Slot]:
    """The four slots as the form shows them, the kept photos first named by their reference."""
    shown = []
    for i in SLOTS:
        ref = form.values.get(kept_field(i)) or form.raw(kept_field(i))
        photo = read_reference(app, member_id, ref) if isinstance(ref, str) and ref else None
        width, height = card_size(photo.width, photo.height) if photo else (0, 0)
        shown.append(Slot(i, file_field(i), alt_field(i), kept_field(i), remove_field(i), photo,
                          photos.photo_path(photo.sha256, card=True) if photo else "",
                          width, height))  # fmt: skip
    return shown


@dataclass(frozen=True, slots=True)
class Shown:
    """A photo as a page shows it: the card size by default, the full size for wide screens."""

    alt: str
    card_src: str
    card_width: int
    card_height: int
    srcset: str


def shown(kept: Sequence[Photo]) -> list[Shown]:
    """An annonce's photos as the annonce page and the preview show them."""
    views = []
    for photo in kept:
        card = photos.photo_path(photo.sha256, card=True)
        width, height = card_size(photo.width, photo.height)
        srcset = f"{card} {width}w"
        if photo.width > width:
            srcset += f", {photos.photo_path(photo.sha256)} {photo.width}w"
        views.append(Shown(photo.alt, card, width, height, srcset))
    return views
