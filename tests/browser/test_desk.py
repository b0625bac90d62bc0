"""The association's desk and the takeover page in Chromium, at 360 px, against a real node.

Claire, made a coordinator with `troc members grant-coordinator`, registers
Mme Martin (the form's errors first), publishes for her, sees Paul's reply
in her queue, marks it called back and answers; then she makes a takeover
code, and Mme Martin, in another browser, takes over her account with it.
Every page is checked: nothing scrolls sideways, no serious axe-core
violation.
"""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.browser.conftest import ROOT, TROC, check_accessibility, screenshot
from tests.browser.test_journey import PASSWORD, sign_up

pytestmark = pytest.mark.browser
WIDTH, HEIGHT = 360, 640


def checked(page, axe_source: str, label: str) -> None:
    scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert scroll <= inner, f"{label}: {scroll} px wide in {inner} px"
    assert check_accessibility(page, axe_source) == [], label


def test_the_coordinator_pages_and_the_takeover_page(start_node, page_of, axe_source):
    node = start_node("Maison de quartier du Pin")
    claire = page_of(width=WIDTH, height=HEIGHT)
    sign_up(claire, node.url, "claire", "Claire C.")
    subprocess.run([*TROC, "--data", str(node.data), "members", "grant-coordinator", "claire"],
                   check=True, capture_output=True, cwd=ROOT, timeout=60)  # fmt: skip

    claire.goto(node.url + "/")
    claire.get_by_role("link", name="La permanence").first.click()
    claire.wait_for_url(re.compile(r"/permanence$"))
    checked(claire, axe_source, "the desk, empty")

    claire.get_by_role("link", name="Inscrire un membre accompagné").click()
    claire.get_by_role("button", name="Inscrire").click()
    assert claire.locator("#erreurs").is_visible()
    checked(claire, axe_source, "the new member form with errors")
    claire.get_by_label("Son nom, tel qu'il sera affiché").fill("Mme Martin")
    claire.get_by_label("Sa commune").select_option(label="Agen")
    claire.get_by_label("Par téléphone").check()
    claire.get_by_label("Son numéro de téléphone").fill("05 53 00 00 00")
    claire.get_by_label(re.compile("La personne est d'accord")).check()
    claire.get_by_role("button", name="Inscrire").click()
    claire.wait_for_url(re.compile(r"/permanence/membres/mme-martin-\d+\?fait=inscrit"))
    member_url = claire.url.split("?")[0]
    checked(claire, axe_source, "the member's page")
    screenshot(claire, "60-permanence-membre-360")

    claire.get_by_role("link", name="Publier une annonce pour Mme Martin").click()
    checked(claire, axe_source, "publishing for the member")
    claire.get_by_label("Je cherche").check()
    claire.get_by_label("Catégorie").select_option(label="Coup de main")
    claire.get_by_label("Titre de l'annonce").fill("Porter mes courses du marché")
    claire.get_by_label("Description").fill("Le mardi matin, du marché à chez moi.")
    claire.get_by_label("Où ?").select_option(value="domicile")
    claire.get_by_role("button", name="Publier", exact=True).click()
    claire.wait_for_url(re.compile(r"\?fait=publiee"))
    annonce_path = claire.locator(".own-item .card-title a").first.get_attribute("href")

    paul = page_of(width=WIDTH, height=HEIGHT)
    sign_up(paul, node.url, "paul", "Paul B.")
    paul.goto(node.url + annonce_path)
    assert "publiée par l'association pour Mme Martin" in paul.locator("main").inner_text()
    paul.get_by_role("link", name=re.compile("Répondre")).first.click()
    paul.get_by_label("Votre message").fill("Je peux passer mardi.")
    paul.get_by_role("button", name="Envoyer le message").click()
    paul.wait_for_url(re.compile(r"/messages/\d+"))
    conversation = paul.url

    claire.goto(node.url + "/permanence")
    assert "à rappeler" in claire.locator("main").inner_text()
    checked(claire, axe_source, "the queue with a reply")
    screenshot(claire, "61-permanence-file-360")
    claire.get_by_role("button", name="Marquer comme rappelé(e)").click()
    claire.wait_for_url(re.compile(r"fait=rappel"))
    assert "Rappelé(e) par Claire C." in claire.locator("main").inner_text()
    claire.get_by_role("link", name="Paul B. a écrit à Mme Martin").click()
    checked(claire, axe_source, "the member's conversation")
    claire.get_by_label("Répondre pour Mme Martin").fill("Mardi 10 h, elle vous attend.")
    claire.get_by_role("button", name="Envoyer").click()
    claire.wait_for_url(re.compile(r"#dernier"))

    paul.goto(conversation)
    assert "écrit par l'association pour Mme Martin" in paul.locator("main").inner_text()

    claire.goto(member_url)
    claire.get_by_role("button", name="Créer un code de reprise").click()
    code = claire.locator("#code-de-reprise").inner_text().strip()
    checked(claire, axe_source, "the takeover code")

    martin = page_of(width=WIDTH, height=HEIGHT)
    martin.goto(node.url + "/compte/reprendre")
    checked(martin, axe_source, "the takeover page")
    martin.get_by_role("button", name="Reprendre mon compte").click()
    assert martin.locator("#erreurs").is_visible()
    checked(martin, axe_source, "the takeover page with errors")
    martin.get_by_label("Le code remis par l'association").fill(code.upper())
    martin.get_by_label("Choisissez votre identifiant").fill("jeanne")
    martin.get_by_label("Choisissez votre mot de passe").fill(PASSWORD)
    martin.get_by_label("Confirmez le mot de passe").fill(PASSWORD)
    martin.get_by_role("button", name="Reprendre mon compte").click()
    martin.wait_for_url(re.compile(r"/profil"))
    martin.goto(node.url + "/mes-annonces")
    assert "Porter mes courses du marché" in martin.locator("main").inner_text()
