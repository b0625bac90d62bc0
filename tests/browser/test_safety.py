"""Blocking and meeting places on a phone, in Chromium against a real node process.

At 360 px: the conversation's page offers the public places of the
annonce's commune and a way to report the other's message; the block's
confirmation page says what it does; after the block, the list shows it and
the other member's page says only that the conversation is closed. No page
here has a serious axe-core violation, and none scrolls sideways.
"""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import check_accessibility, screenshot
from tests.browser.test_journey import post_annonce, set_places, sign_up
from tests.browser.test_phones import assert_fits

pytestmark = pytest.mark.browser
PHONE = {"width": 360, "height": 640}


def checked(page, axe_source: str, label: str) -> None:
    assert_fits(page, label)
    assert check_accessibility(page, axe_source) == [], label


def test_meeting_places_and_a_block_on_a_phone(start_node, page_of, axe_source):
    node = start_node("Maison de quartier du Pin")
    base = node.url
    marie = page_of(**PHONE)
    sign_up(marie, base, "marie", "Marie D.")
    set_places(marie, base, home="Agen", work="Layrac")
    annonce = post_annonce(marie, base, "Aide au jardin le samedi", "Je taille les haies.")

    paul = page_of(**PHONE)
    sign_up(paul, base, "paul", "Paul B.")
    paul.goto(annonce)
    paul.get_by_role("link", name="Répondre à l'annonce").click()
    paul.get_by_label("Votre message").fill("Bonjour Marie, samedi 10 h ?")
    paul.get_by_role("button", name="Envoyer le message").click()
    paul.wait_for_url(re.compile(r"/messages/\d+"))
    conversation = paul.url.split("#")[0]
    places = paul.get_by_role("region", name="Pour vous rencontrer, choisissez un lieu public :")
    assert places.is_visible()
    assert places.get_by_text("la mairie d'Agen").is_visible()
    screenshot(paul, "40-conversation-lieux-360")
    checked(paul, axe_source, "the conversation with meeting places")

    # Marie may report Paul's message, and blocks him from the conversation.
    marie.goto(conversation)
    marie.get_by_role("link", name="Signaler ce message").click()
    assert marie.get_by_text("Bonjour Marie, samedi 10 h ?").is_visible()
    checked(marie, axe_source, "reporting a message")
    marie.goto(conversation)
    marie.get_by_role("link", name="Ne plus voir cette personne").click()
    assert marie.get_by_role("heading", name="Ne plus voir cette personne").is_visible()
    assert marie.get_by_text("vous ne verrez plus ses annonces").is_visible()
    screenshot(marie, "41-bloquer-confirmation-360")
    checked(marie, axe_source, "the block's confirmation page")
    marie.get_by_role("button", name="Oui, ne plus voir cette personne").click()
    marie.wait_for_url(re.compile(r"/personnes-bloquees\?fait=bloque"))
    assert marie.get_by_text("Paul B.").first.is_visible()
    screenshot(marie, "42-personnes-bloquees-360")
    checked(marie, axe_source, "the list of blocked people")

    # Paul is told only that the conversation is closed, and no longer sees her annonce.
    paul.goto(conversation)
    assert paul.get_by_text("Cette conversation est close").is_visible()
    assert paul.get_by_label("Votre réponse").count() == 0
    assert "bloqu" not in paul.content().lower()
    checked(paul, axe_source, "the closed conversation")
    assert paul.goto(annonce).status == 404

    # Lifting the block restores the conversation.
    marie.get_by_role("button", name=re.compile("Débloquer")).click()
    marie.wait_for_url(re.compile(r"fait=debloque"))
    paul.goto(conversation)
    assert paul.get_by_label("Votre réponse").is_visible()
