"""Who helped and the « merci » in Chromium, at 360 px, against a real node process.

Marie lends a drill, Paul answers, Marie marks her annonce fulfilled and is
asked who helped; each writes a merci with the keyboard-reachable form. Every
page (who helped, the merci before and after, the list, a neighbour's page,
« Ça s'est mal passé ? ») has no serious axe-core violation and does not
scroll sideways on a phone; the same pages work without JavaScript.
"""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import check_accessibility, screenshot
from tests.browser.test_journey import post_annonce, set_places, sign_up

pytestmark = pytest.mark.browser


def fits_and_passes(page, axe_source: str, name: str) -> list[str]:
    scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert scroll <= inner, f"{name}: {scroll} px wide in a {inner} px screen"
    assert page.locator("h1").count() == 1, name
    screenshot(page, f"70-merci-{name}-360")
    return check_accessibility(page, axe_source)


def test_who_helped_and_both_mercis_on_a_phone(start_node, page_of, axe_source, browser):
    node = start_node("Maison du Pin")
    base = node.url
    marie, paul = page_of(width=360, height=640), page_of(width=360, height=640)
    sign_up(marie, base, "marie", "Marie D.")
    set_places(marie, base, "Agen", "Boé")
    annonce = post_annonce(marie, base, "Prêt d'une perceuse", "Je prête ma perceuse le week-end.")
    sign_up(paul, base, "paul", "Paul B.")
    paul.goto(annonce)
    paul.get_by_role("link", name="Répondre à l'annonce").click()
    paul.get_by_label("Votre message").fill("Bonjour, je peux l'emprunter samedi ?")
    paul.get_by_role("button", name="Envoyer le message").click()

    problems = {}
    marie.goto(annonce)
    marie.get_by_role("button", name="Marquer comme pourvue").click()
    marie.wait_for_url(re.compile(r"/qui-a-aide$"))
    assert marie.locator("h1").inner_text() == "À qui avez-vous rendu service ?"
    problems["qui-a-aide"] = fits_and_passes(marie, axe_source, "qui-a-aide")
    marie.get_by_label("Paul B.").check()
    marie.get_by_role("button", name="Valider").click()
    marie.wait_for_url(re.compile(r"/mercis/\d+$"))
    exchange = marie.url
    assert "Vous avez aidé Paul B." in marie.locator("main").inner_text()
    problems["merci-form"] = fits_and_passes(marie, axe_source, "form")
    marie.get_by_label("Votre merci").fill("Merci Paul, la perceuse est rentrée propre !")
    marie.get_by_role("button", name="Envoyer mon merci").click()
    marie.wait_for_url(re.compile(r"envoye=1"))
    assert "sera visible quand Paul B. aura écrit le sien" in marie.locator("main").inner_text()
    problems["merci-waiting"] = fits_and_passes(marie, axe_source, "waiting")

    paul.goto(base + "/mercis")
    assert "À vous de dire merci" in paul.locator("main").inner_text()
    problems["list"] = fits_and_passes(paul, axe_source, "list")
    paul.goto(exchange)
    assert "la perceuse est rentrée" not in paul.locator("main").inner_text()
    paul.get_by_label("Votre merci").focus()
    paul.keyboard.type("Merci à vous !")
    paul.keyboard.press("Tab")
    paul.keyboard.press("Enter")  # the button, reached with the keyboard
    paul.wait_for_url(re.compile(r"envoye=1"))
    text = paul.locator("main").inner_text()
    assert "la perceuse est rentrée propre" in text and "Merci à vous !" in text
    problems["merci-shown"] = fits_and_passes(paul, axe_source, "shown")

    paul.get_by_role("link", name="La page de Marie D.").click()
    text = paul.locator("main").inner_text()
    assert "A aidé 1 voisin" in text and "A reçu de l'aide 0 fois" in text
    assert "Merci à vous !" in text
    problems["voisin"] = fits_and_passes(paul, axe_source, "voisin")

    paul.goto(exchange)
    paul.get_by_role("link", name="Ça s'est mal passé ? Dites-le à l'association").click()
    problems["signaler"] = fits_and_passes(paul, axe_source, "signaler")
    assert {p: v for p, v in problems.items() if v} == {}

    # Without JavaScript, the list and the merci still read and the report form still sends.
    context = browser.new_context(viewport={"width": 360, "height": 640}, locale="fr-FR",
                                  java_script_enabled=False,
                                  storage_state=paul.context.storage_state())  # fmt: skip
    try:
        plain = context.new_page()
        plain.goto(exchange + "/signaler")
        plain.get_by_label("Ce qui s'est passé").fill("Tout s'est bien passé, c'est un essai.")
        plain.get_by_role("button", name="Envoyer aux modérateurs").click()
        assert "Les modérateurs de l'association liront" in plain.locator("main").inner_text()
        plain.goto(base + "/profil")
        assert "A reçu de l'aide une fois" in plain.locator("main").inner_text()
        assert "essai" not in plain.locator("main").inner_text()
    finally:
        context.close()
