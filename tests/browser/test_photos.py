"""A photo posted from a phone, in Chromium against a real node process.

At 360 px, a resident chooses a real JPEG (made by Pillow, with the place it
was taken in its EXIF) in the annonce form, describes it, previews and
publishes; the annonce page shows it with its description as alt text, the
card on the home page shows its card size, nothing scrolls sideways, and
axe-core finds no serious violation on the form, the preview or the page.
"""

from __future__ import annotations

import io
import re

import pytest
from PIL import ExifTags, Image

from tests.browser.conftest import check_accessibility, screenshot
from tests.browser.test_journey import sign_up

pytestmark = pytest.mark.browser
WIDTH, HEIGHT = 360, 640


def phone_photo(path) -> None:
    """A 2000 × 1500 JPEG with a GPS position, as a phone would send."""
    image = Image.linear_gradient("L").resize((2000, 1500)).convert("RGB")
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Telephone"
    place = exif.get_ifd(ExifTags.IFD.GPSInfo)
    place[ExifTags.GPS.GPSLatitudeRef] = "N"
    place[ExifTags.GPS.GPSLatitude] = (44.0, 12.0, 3.5)
    place[ExifTags.GPS.GPSLongitudeRef] = "E"
    place[ExifTags.GPS.GPSLongitude] = (0.0, 37.0, 1.25)
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes(), quality=90)
    path.write_bytes(out.getvalue())


def assert_fits(page, label: str) -> None:
    scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert scroll <= inner, f"{label}: the page is {scroll} px wide in a {inner} px screen"


def test_a_photo_from_a_phone_is_previewed_published_and_described(
    start_node, page_of, axe_source, tmp_path
):  # fmt: skip
    node = start_node("Maison de quartier du Pin")
    photo = tmp_path / "IMG_20260704_101500.jpg"
    phone_photo(photo)
    page = page_of(width=WIDTH, height=HEIGHT)
    sign_up(page, node.url, "marie", "Marie D.")
    problems = {}

    page.goto(node.url + "/annonces/nouvelle")
    assert_fits(page, "form")
    problems["form"] = check_accessibility(page, axe_source)
    page.get_by_label("Catégorie").select_option(label="Objet à donner ou à prêter")
    page.get_by_label("Titre de l'annonce").fill("Vélo d'enfant")
    page.get_by_label("Description").fill("Un vélo de 16 pouces, à venir chercher.")
    page.get_by_label("Où ?").select_option(label="Agen")
    page.locator("#photo_1").set_input_files(str(photo))
    page.get_by_role("button", name="Voir l'aperçu").click()

    # no description: the form comes back with one to check, the photo kept, the text too
    page.wait_for_selector("#photo_1_description-error")
    assert page.get_by_label("Ce que montre la photo 1").input_value() == "Photo : Vélo d'enfant"
    assert page.get_by_label("Description", exact=True).input_value().startswith("Un vélo")
    assert page.locator(".photo-slot-image").count() == 1
    assert_fits(page, "form with a photo")
    problems["form with a photo"] = check_accessibility(page, axe_source)
    screenshot(page, "60-photo-formulaire-360")
    page.get_by_label("Ce que montre la photo 1").fill("Le vélo rouge, vu de côté")
    page.get_by_role("button", name="Voir l'aperçu").click()

    page.wait_for_url(re.compile(r"/annonces/nouvelle/apercu"))
    shown = page.get_by_role("img", name="Le vélo rouge, vu de côté")
    assert shown.count() == 1
    assert_fits(page, "preview")
    problems["preview"] = check_accessibility(page, axe_source)
    page.get_by_role("button", name="Publier l'annonce").click()

    page.wait_for_url(re.compile(r"/annonces/[A-Za-z0-9_-]{64}"))
    image = page.get_by_role("img", name="Le vélo rouge, vu de côté")
    image.wait_for()
    loaded = image.evaluate("i => i.complete && i.naturalWidth")
    assert loaded, "the photo did not load on the annonce page"
    assert image.get_attribute("srcset") and image.get_attribute("sizes")
    assert_fits(page, "annonce page")
    problems["annonce page"] = check_accessibility(page, axe_source)
    screenshot(page, "61-photo-annonce-360")

    page.goto(node.url + "/")
    card = page.locator("img.card-photo")
    assert card.get_attribute("alt") == "Le vélo rouge, vu de côté"
    assert card.get_attribute("loading") == "lazy"
    assert card.evaluate("i => i.getBoundingClientRect().width") <= WIDTH
    title_bottom = page.evaluate(
        "document.querySelector('.card-title a').getClientRects()[0].bottom")
    assert title_bottom <= HEIGHT, f"the first card's title is at {title_bottom} px"
    screenshot(page, "62-photo-carte-360")
    assert_fits(page, "home")
    problems["home"] = check_accessibility(page, axe_source)
    assert {label: found for label, found in problems.items() if found} == {}
