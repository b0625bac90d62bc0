"""The preferences page and the saved-search flow, in Chromium, at phone width, with axe-core.

A node mailing through a real SMTP server on loopback: a resident gives an
address and confirms it from the mail, chooses when to be told, saves a
search from the results, finds it listed, and reads « Avis ».
"""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import check_accessibility, screenshot
from tests.browser.test_journey import set_places, sign_up
from tests.mailserver import MailServer

pytestmark = pytest.mark.browser

_LINK = re.compile(r"http://\S+/adresse/confirmer/[A-Za-z0-9_-]+")


@pytest.fixture
def relay():
    server = MailServer().start()
    yield server
    server.stop()


def _wait_for_mail(relay: MailServer, page, count: int) -> None:
    for _ in range(100):
        if len(relay.received) >= count:
            return
        page.wait_for_timeout(100)
    raise AssertionError("no mail arrived")


def test_preferences_and_a_saved_search_on_a_phone(start_node, page_of, axe_source, relay):
    node = start_node("Maison de quartier du Pin", env={
        "TROC_SMTP_HOST": "127.0.0.1", "TROC_SMTP_PORT": str(relay.port),
        "TROC_SMTP_SECURITY": "none", "TROC_MAIL_FROM": "troc@quartier.example",
        "TROC_QUIET_HOURS": "none"})  # fmt: skip
    page = page_of(width=360, height=740)
    problems: dict[str, list[str]] = {}
    sign_up(page, node.url, "odette", "Odette M.")
    set_places(page, node.url, "Agen", "Boé")

    page.goto(node.url + "/preferences")
    problems["preferences"] = check_accessibility(page, axe_source)
    page.get_by_role("textbox", name="Votre adresse e-mail").fill("odette@example.org")
    page.get_by_role("button", name="Envoyer le lien de confirmation").click()
    page.wait_for_load_state()
    assert "attend votre confirmation" in page.content()
    _wait_for_mail(relay, page, 1)
    link = _LINK.search(relay.received[0].part("plain")).group(0)
    page.goto(link)
    page.goto(node.url + "/preferences")
    assert "odette@example.org" in page.content() and "confirmée" in page.content()
    group = page.get_by_role("group", name="Quand une annonce correspond à une de vos recherches")
    group.get_by_label("Tout de suite").check()
    page.get_by_role("button", name="Enregistrer mes choix").click()
    page.wait_for_load_state()
    assert page.get_by_role("group", name="Quand une annonce correspond à une de vos recherches") \
        .get_by_label("Tout de suite").is_checked()  # fmt: skip
    problems["preferences after saving"] = check_accessibility(page, axe_source)
    screenshot(page, "40-preferences-360")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360

    page.goto(node.url + "/?q=jardinage&autour=travail&rayon=5")
    page.get_by_role("button", name=re.compile("Être prévenu des nouvelles annonces")).click()
    page.wait_for_load_state()
    assert "/recherches" in page.url
    assert "jardinage" in page.content()
    problems["saved searches"] = check_accessibility(page, axe_source)
    screenshot(page, "41-recherches-360")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360

    page.goto(node.url + "/avis")
    problems["avis"] = check_accessibility(page, axe_source)
    assert {k: v for k, v in problems.items() if v} == {}
