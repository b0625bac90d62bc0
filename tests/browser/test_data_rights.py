"""Downloading one's data and deleting one's account in Chromium, against a real node.

At 360 px both pages fit the screen and have no serious axe-core violation;
the download is a real file the browser saves; a wrong password says so next
to the field; the deletion leaves the resident logged out, and the other
member of a conversation sees « ancien membre ».
"""

from __future__ import annotations

import json
import re

import pytest

from tests.browser.conftest import check_accessibility, screenshot
from tests.browser.test_journey import PASSWORD, post_annonce, set_places, sign_up

pytestmark = pytest.mark.browser


def fits(page) -> None:
    scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert scroll <= inner, f"{page.url}: {scroll} px wide in a {inner} px screen"


def test_download_then_delete_at_360_px(start_node, page_of, axe_source):
    node = start_node("Maison de quartier du Pin")
    base = node.url
    marie = page_of(width=360, height=640)
    sign_up(marie, base, "marie", "Marie Dupont")
    set_places(marie, base, "Agen", "Boé")
    annonce = post_annonce(marie, base, "Aide au jardin", "Je taille les haies le samedi.")
    paul = page_of(width=360, height=640)
    sign_up(paul, base, "paul", "Paul Bernard")
    paul.goto(annonce + "/repondre")
    paul.get_by_label("Votre message").fill("Bonjour Marie, samedi 10 h ?")
    paul.get_by_role("button", name=re.compile("Envoyer")).click()
    paul.wait_for_url(re.compile(r"/messages/\d+"))
    conversation = paul.url.split("#")[0]

    marie.goto(base + "/profil")
    marie.get_by_role("link", name="Télécharger mes données").click()
    marie.wait_for_url(base + "/compte/donnees")
    fits(marie)
    assert check_accessibility(marie, axe_source) == []
    screenshot(marie, "70-compte-donnees-360")
    with marie.expect_download() as downloading:
        marie.get_by_role("button", name="Télécharger le fichier").click()
    saved = downloading.value
    assert re.fullmatch(r"troc-marie-dupont-\d{4}-\d{4}-\d\d-\d\d\.json", saved.suggested_filename)
    data = json.loads(open(saved.path(), encoding="utf-8").read())
    assert [a["title"] for a in data["tables"]["annonces"]] == ["Aide au jardin"]
    assert "password_hash" not in data["tables"]["members"][0]

    marie.get_by_role("link", name="Supprimer mon compte").click()
    marie.wait_for_url(base + "/compte/supprimer")
    fits(marie)
    assert "ancien membre" in marie.locator("main").inner_text()
    assert check_accessibility(marie, axe_source) == []
    screenshot(marie, "71-compte-supprimer-360")
    marie.get_by_label("Votre mot de passe, pour confirmer").fill("pas le bon")
    marie.get_by_role("button", name="Supprimer mon compte pour toujours").click()
    assert "Ce n'est pas votre mot de passe." in marie.locator("main").inner_text()
    assert check_accessibility(marie, axe_source) == []
    screenshot(marie, "72-compte-supprimer-erreur-360")
    marie.get_by_label("Votre mot de passe, pour confirmer").fill(PASSWORD)
    marie.get_by_role("button", name="Supprimer mon compte pour toujours").click()
    assert marie.locator("h1").inner_text() == "Compte supprimé"
    fits(marie)
    assert check_accessibility(marie, axe_source) == []
    screenshot(marie, "73-compte-supprime-360")
    marie.goto(base + "/profil")
    assert "/connexion" in marie.url

    paul.goto(conversation)
    text = paul.locator("main").inner_text()
    assert "ancien membre" in text and "Marie Dupont" not in text
    assert "Cette personne a supprimé son compte" in text
    assert check_accessibility(paul, axe_source) == []
    screenshot(paul, "74-conversation-ancien-membre-360")
    paul.goto(annonce)
    assert "Aide au jardin" not in paul.locator("main").inner_text()
