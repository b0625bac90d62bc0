"""« Vous avez un numéro d'annonce ? »: a code from the sheet typed on a phone, in Chromium.

At 360 px, against a real node process: the code shown on an annonce's page,
typed loosely at /ref (reached from « À propos »), leads back to the
annonce; a wrong code is said next to the field, which keeps it. Every state
of the page has no serious axe-core violation and nothing scrolls sideways.
"""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import check_accessibility, screenshot
from tests.browser.test_journey import post_annonce, set_places, sign_up

pytestmark = pytest.mark.browser


def _fits(page) -> bool:
    scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    return scroll <= inner


def test_a_code_from_the_sheet_leads_to_its_annonce_on_a_phone(start_node, page_of, axe_source):
    node = start_node("Maison de quartier du Pin")
    author = page_of()
    sign_up(author, node.url, "marie", "Marie D.")
    set_places(author, node.url, home="Agen", work="Layrac")
    annonce_url = post_annonce(author, node.url, "Cours de tricot pour débutants",
                               "Le mardi après-midi, à la maison de quartier.")  # fmt: skip
    shown = author.locator(".short-code").inner_text()
    code = re.fullmatch(r"réf\. ([0-9A-Z]{5})", shown.strip()).group(1)
    author.close()

    page = page_of(width=360, height=640)
    problems = {}
    page.goto(node.url + "/a-propos")
    page.get_by_role("link", name="Vous avez un numéro d'annonce ?").click()
    page.wait_for_url(re.compile(r"/ref$"))
    problems["form"] = check_accessibility(page, axe_source)
    assert _fits(page)

    page.get_by_label("Réf. de l'annonce").fill("réf. " + code[:3].lower() + " " + code[3:])
    page.get_by_role("button", name="Trouver l'annonce").click()
    page.wait_for_url(re.compile(r"/ref\?code="))
    problems["found"] = check_accessibility(page, axe_source)
    assert _fits(page)
    screenshot(page, "70-ref-trouvee-360")
    page.get_by_role("link", name="Cours de tricot pour débutants").click()
    page.wait_for_url(annonce_url)

    page.goto(node.url + "/ref")
    page.get_by_label("Réf. de l'annonce").fill("K7P")
    page.get_by_role("button", name="Trouver l'annonce").click()
    field = page.get_by_label("Réf. de l'annonce")
    assert field.get_attribute("aria-invalid") == "true" and field.input_value() == "K7P"
    assert "Une réf. a 5 chiffres ou lettres" in page.locator("#code-error").inner_text()
    problems["wrong"] = check_accessibility(page, axe_source)
    screenshot(page, "71-ref-erreur-360")

    sheet = page.request.get(node.url + "/feuille")
    assert sheet.status == 200 and sheet.headers["content-type"] == "application/pdf"
    assert sheet.body().startswith(b"%PDF-")
    assert problems == {"form": [], "found": [], "wrong": []}
