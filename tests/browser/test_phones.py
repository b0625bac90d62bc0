"""Residents on a cheap phone, in Chromium against a real node process.

At 320 and 360 px nothing scrolls sideways, one long word included, and the
first annonce is on the first screen, logged out and logged in; the error
summary takes the focus without JavaScript; a double click publishes once
and Back after publishing shows no "resubmit the form?" page. Every page
checked here has no serious axe-core violation.
"""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import check_accessibility, screenshot
from tests.browser.test_journey import post_annonce, set_places, sign_up

pytestmark = pytest.mark.browser
LONG_WORD = "Anticonstitutionnellement" * 4 + "Inoxydables123"  # 114 characters, no space
PHONES = ((320, 568), (360, 640))


def widths(page) -> tuple[int, int]:
    return page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")


def first_title_line_bottom(page) -> float:
    """Where the first line of the first annonce's title ends, from the top of the screen."""
    return page.evaluate("document.querySelector('.card-title a').getClientRects()[0].bottom")


def assert_fits(page, label: str) -> None:
    scroll, inner = widths(page)
    assert scroll <= inner, f"{label}: the page is {scroll} px wide in a {inner} px screen"


@pytest.fixture
def node_with_annonces(start_node, page_of):
    node = start_node("Maison de quartier du Pin")
    page = page_of()
    sign_up(page, node.url, "marie", "Marie D.")
    set_places(page, node.url, home="Agen", work="Layrac")
    post_annonce(page, node.url, "Aide au jardin le samedi", "Je taille les haies. " + LONG_WORD)
    annonce = post_annonce(page, node.url, LONG_WORD, LONG_WORD + " " + LONG_WORD)
    page.close()
    return node, annonce


def test_one_long_word_widens_no_page(node_with_annonces, page_of):
    node, annonce = node_with_annonces
    for width, height in ((1280, 900), *PHONES):
        page = page_of(width=width, height=height)
        for path in ("/", annonce.replace(node.url, "")):
            page.goto(node.url + path)
            assert_fits(page, f"{path} at {width} px")
    screenshot(page, "30-mot-long-320")


@pytest.mark.parametrize(("width", "height"), PHONES)
def test_on_a_phone_nothing_scrolls_sideways_and_the_first_annonce_shows(
    node_with_annonces, page_of, axe_source, width, height
):
    node, annonce = node_with_annonces
    visitor = page_of(width=width, height=height)
    member = page_of(width=width, height=height)
    sign_up(member, node.url, "paul", "Paul")
    set_places(member, node.url, home="Boé", work="Agen")
    problems = {}
    audit = width == 360  # axe-core once per page: the layout is the same at 320

    def check(page, label):
        if audit:
            problems[label] = check_accessibility(page, axe_source)

    for who, page in (("visiteur", visitor), ("membre", member)):
        page.goto(node.url + "/")
        assert_fits(page, f"home, {who}, {width} px")
        bottom = first_title_line_bottom(page)
        assert bottom <= height, f"{who} at {width}x{height}: the first annonce's title is at {bottom} px"
        rows = page.evaluate("new Set([...document.querySelectorAll('.main-nav li')]"
                             ".map(li => li.getBoundingClientRect().top)).size")  # fmt: skip
        assert rows <= 2, f"{who}: the menu takes {rows} rows"
        screenshot(page, f"31-accueil-{who}-{width}")
        for path in ("/?q=jardin&autour=47001&rayon=10", annonce.replace(node.url, ""), "/a-propos"):
            page.goto(node.url + path)
            assert_fits(page, f"{path}, {who}, {width} px")
            check(page, f"{who} {path}")
    for path in ("/annonces/nouvelle", "/profil", "/mes-annonces", "/messages"):
        member.goto(node.url + path)
        assert_fits(member, f"{path}, {width} px")
        check(member, path)
    member.goto(node.url + "/annonces/nouvelle")
    member.get_by_label("Catégorie").select_option(label="Sortie")
    screenshot(member, f"32-formulaire-{width}")
    assert {p: v for p, v in problems.items() if v} == {}


def test_the_error_summary_names_the_fields_and_takes_the_focus(start_node, page_of, axe_source):
    node = start_node("Centre social de Montanou")
    page = page_of(width=360, height=640)
    sign_up(page, node.url, "jeanne", "Jeanne")
    page.goto(node.url + "/annonces/nouvelle")
    page.get_by_role("button", name="Voir l'aperçu").click()
    page.wait_for_load_state()
    focused = page.evaluate("document.activeElement.closest('#erreurs') !== null")
    assert focused, "the focus did not move to the error summary"
    summary = page.locator("#erreurs li").all_inner_texts()
    assert summary == ["Catégorie — Choisissez une option.",
                       "Titre de l'annonce — Ce champ est obligatoire.",
                       "Description — Ce champ est obligatoire.",
                       "Où ? — Choisissez où a lieu l'échange : une commune de la liste, ou près de chez vous."]  # fmt: skip
    page.locator("#erreurs a", has_text="Titre de l'annonce").click()
    assert page.evaluate("document.activeElement.id") == "titre"
    assert check_accessibility(page, axe_source) == []
    screenshot(page, "33-erreurs-360")


def test_a_double_click_publishes_once_and_back_asks_nothing(start_node, page_of):
    node = start_node("Centre social de Montanou")
    page = page_of(width=360, height=640)
    sign_up(page, node.url, "jeanne", "Jeanne")
    set_places(page, node.url, home="Agen", work="Agen")
    page.goto(node.url + "/annonces/nouvelle")
    page.get_by_label("Catégorie").select_option(label="Service")
    page.get_by_label("Titre de l'annonce").fill("Prête une perceuse")
    page.get_by_label("Description").fill("Avec ses mèches.")
    page.get_by_role("button", name="Voir l'aperçu").click()
    page.wait_for_url(re.compile(r"/annonces/nouvelle/apercu\?envoi="))
    page.get_by_role("button", name="Publier l'annonce").dblclick()
    page.wait_for_url(re.compile(r"/annonces/[A-Za-z0-9_-]{64}\?publiee=1"))
    published = page.url
    page.go_back()
    page.wait_for_load_state()
    assert page.url == published, "Back after publishing did not lead to the annonce"
    page.goto(node.url + "/mes-annonces")
    assert page.locator(".own-item").count() == 1
