"""Two residents of two associations, in Chromium, at the two ends of a line of real nodes.

A (Maison de quartier du Pin) and B (Centre social de Montanou) are not peers:
each is a peer of M (Foyer de Boé) only, so B knows A through the directory of
nodes that M passes on. Marie signs up on A, records her home and work, and
posts; Paul, on B, finds the annonce by words and by distance, sees A's name,
and answers it — his message goes straight from B to A; Marie reads the answer
on A and replies; Paul sees the reply on B; Marie withdraws the annonce on A
and it disappears from B. The operators peer the nodes with `troc peers add`.
Screenshots go to test-artifacts/screenshots/, and the new pages are checked
with axe-core.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable

import pytest

from tests.browser.conftest import ROOT, TROC, check_accessibility, screenshot
from tests.browser.test_journey import post_annonce, set_places, sign_up

pytestmark = pytest.mark.browser
SETTLE_S = 30.0  # gossip and message delivery between the processes take well under a second
TITLE = "Aide au jardin le samedi"


def add_peer(node, other) -> None:
    """The operator of ``node`` accepts ``other`` as a peer, from the command line."""
    done = subprocess.run(
        [*TROC, "--data", str(node.data), "peers", "add", other.url, "--yes"],
        env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Peer added" in done.stdout


def reload_until(page, url: str, check: Callable[[], bool]) -> None:
    """Load ``url`` again and again, as a resident would, until ``check()`` holds."""
    deadline = time.monotonic() + SETTLE_S
    while True:
        page.goto(url)
        if check():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{url}: still not as expected after {SETTLE_S:g} s")
        time.sleep(0.3)


def test_a_conversation_between_residents_at_the_two_ends_of_the_network(
    start_node, page_of, axe_source
):
    a = start_node("Maison de quartier du Pin")
    m = start_node("Foyer de Boé")
    b = start_node("Centre social de Montanou")
    for one, other in ((a, m), (m, a), (m, b), (b, m)):
        add_peer(one, other)
    on_a, on_b = page_of(), page_of(width=390, height=844)  # Paul is on his phone

    # On A: Marie signs up, gives her home and her work, and posts.
    sign_up(on_a, a.url, "marie", "Marie D.")
    set_places(on_a, a.url, home="Agen", work="Layrac")
    annonce_url = post_annonce(on_a, a.url, TITLE,
                               "Je peux tailler vos haies et tondre la pelouse.\nJ'ai le matériel.")  # fmt: skip
    ref = annonce_url.rsplit("/", 1)[1]

    # On B: Paul finds it by words (plural, capitals) and by distance from home and work.
    sign_up(on_b, b.url, "paul", "Paul B.")
    set_places(on_b, b.url, home="Boé", work="Agen")
    titles = on_b.locator(".card-title")
    reload_until(on_b, b.url + "/?q=JARDINS", lambda: titles.all_inner_texts() == [TITLE]
                 and "Maison de quartier du Pin" in on_b.locator(".card").first.inner_text())
    on_b.goto(b.url + "/?autour=domicile&rayon=10&tri=proche")
    assert titles.all_inner_texts() == [TITLE]
    assert "km" in on_b.locator(".card-meta").first.inner_text()
    screenshot(on_b, "20-b-recherche-distance-domicile")
    on_b.goto(b.url + "/?q=haies&autour=travail&rayon=5")
    assert titles.all_inner_texts() == [TITLE]

    # Paul answers; his message waits for Marie's association, then goes.
    on_b.get_by_role("link", name=TITLE).click()
    on_b.get_by_role("link", name="Répondre à l'annonce").click()
    assert on_b.locator("#injoignable").count() == 0  # B reaches A, which is not its peer
    screenshot(on_b, "21-b-repondre")
    answer_problems = check_accessibility(on_b, axe_source)
    on_b.get_by_label("Votre message").fill("Bonjour Marie, samedi 10 h ?")
    on_b.get_by_role("button", name="Envoyer le message").click()
    on_b.wait_for_url(re.compile(r"/messages/\d+"))
    conversation_b = on_b.url.split("#")[0]

    # On A: Marie sees one new message, reads it, and replies.
    unread = on_a.locator(".main-nav .badge")
    reload_until(on_a, a.url + "/messages", lambda: unread.count() == 1)
    assert unread.inner_text().startswith("1")
    assert "Paul B." in on_a.locator(".inbox-unread").inner_text()
    screenshot(on_a, "22-a-messagerie")
    on_a.locator(".inbox-unread a").click()
    assert on_a.get_by_text("Bonjour Marie, samedi 10 h ?").is_visible()
    on_a.get_by_label("Votre réponse").fill("Parfait, à samedi !")
    on_a.get_by_role("button", name="Envoyer").click()
    on_a.wait_for_url(re.compile(r"/messages/\d+"))
    screenshot(on_a, "23-a-conversation")

    # On B: Paul sees the reply, and that his own message was delivered.
    reply = on_b.get_by_text("Parfait, à samedi !")
    reload_until(on_b, conversation_b, reply.is_visible)
    assert on_b.locator(".bubble-mine .bubble-status").inner_text() == "transmis"
    screenshot(on_b, "24-b-reponse-recue")
    conversation_problems = check_accessibility(on_b, axe_source)

    # Marie withdraws the annonce on A: it disappears from B.
    on_a.goto(annonce_url)
    on_a.get_by_role("link", name="Retirer l'annonce").click()
    on_a.get_by_role("button", name="Oui, retirer l'annonce").click()
    reload_until(on_b, b.url + "/?q=jardin", lambda: on_b.locator(".card").count() == 0)
    assert on_b.goto(f"{b.url}/annonces/{ref}").status == 410  # B says it was withdrawn
    assert on_b.get_by_role("heading", name="Cette annonce a été retirée").is_visible()
    screenshot(on_b, "25-b-annonce-retiree")
    # The conversation stays, for the two of them.
    on_b.goto(conversation_b)
    assert on_b.get_by_text("Parfait, à samedi !").is_visible()

    assert answer_problems == [] and conversation_problems == []
