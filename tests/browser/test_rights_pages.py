"""The association's contact and the residents' rights pages in Chromium, against a real node.

At 360 px « À propos », « Vos données », the accessibility statement and the
legal notice have no serious axe-core violation and nothing scrolls
sideways; the footer's links are reached with the keyboard alone; the pages
read the same without JavaScript; the phone number is a link that dials.
"""

from __future__ import annotations

import pytest

from tests.browser.conftest import check_accessibility, screenshot

pytestmark = pytest.mark.browser
PAGES = ("/a-propos", "/confidentialite", "/accessibilite", "/mentions-legales")
CONTACT = {
    "TROC_ASSOCIATION_ADDRESS": "Centre social Montanou | 2 rue Lamartine | 47000 Agen",
    "TROC_ASSOCIATION_PHONE": "05 53 12 34 56",
    "TROC_ASSOCIATION_HOURS": "mardi 9 h – 12 h | jeudi 14 h – 17 h",
    "TROC_ASSOCIATION_EMAIL": "accueil@montanou.example",
    "TROC_PUBLICATION_DIRECTOR": "Jeanne Martin, présidente",
    "TROC_HOSTING": "Chatons d'Aquitaine | 1 place du Marché | 33000 Bordeaux",
}


@pytest.fixture
def node(start_node):
    return start_node("Centre social de Montanou", CONTACT)


def test_the_pages_at_360_px_fit_and_pass_axe(node, page_of, axe_source):
    page = page_of(width=360, height=640)
    problems = {}
    for path in PAGES:
        page.goto(node.url + path)
        assert page.locator("h1").count() == 1, path
        scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert scroll <= inner, f"{path}: {scroll} px wide in a {inner} px screen"
        problems[path] = check_accessibility(page, axe_source)
        screenshot(page, f"60-droits{path.replace('/', '-')}-360")
    assert {p: v for p, v in problems.items() if v} == {}


def test_the_phone_is_a_link_that_dials(node, page_of):
    page = page_of(width=360, height=640)
    page.goto(node.url + "/a-propos")
    help_line = page.locator(".contact-help")
    assert "Venez à la permanence ou appelez-nous" in help_line.inner_text()
    phone = help_line.get_by_role("link", name="05 53 12 34 56")
    assert phone.get_attribute("href") == "tel:0553123456"
    assert page.locator("address").inner_text().splitlines() == [
        "Centre social Montanou", "2 rue Lamartine", "47000 Agen"]  # fmt: skip


def test_the_footer_links_are_reached_with_the_keyboard(node, page_of):
    page = page_of(width=360, height=640)
    page.goto(node.url + "/")
    for _ in range(60):  # Tab until the footer's link has the focus
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent").strip() == "Vos données":
            break
    else:
        pytest.fail("the footer's « Vos données » link is never focused")
    page.keyboard.press("Enter")
    page.wait_for_url(node.url + "/confidentialite")
    assert page.locator("h1").inner_text() == "Vos données"


def test_the_pages_read_the_same_without_javascript(node, browser):
    context = browser.new_context(viewport={"width": 360, "height": 640}, locale="fr-FR",
                                  java_script_enabled=False)  # fmt: skip
    try:
        page = context.new_page()
        page.goto(node.url + "/mentions-legales")
        text = page.locator("main").inner_text()
        assert "Jeanne Martin, présidente" in text and "Chatons d'Aquitaine" in text
        page.get_by_role("link", name="Accessibilité : non conforme").click()
        assert "Ce site est non conforme au RGAA : son audit complet n'a pas encore été fait." in page.locator("main").inner_text()
    finally:
        context.close()
