"""Thanks between residents of two real node processes (`troc run`), through the web forms.

Marie, on n0, lends something; Paul, on n1, answers; Marie marks her annonce
fulfilled and says Paul was the one. The couriers, in the background, carry
the exchange to n1 and each merci to the other node; both mercis are shown
once both are written, and the counts appear on both nodes' pages.
"""

from __future__ import annotations

import html
import re

import pytest

from tests.integration.crash import Resident, csrf_of, read
from tests.integration.harness import Cluster, wait_until
from tests.integration.test_whole_network import post_through_the_form, resident, write

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

SETTLE_S = 30.0
EXCHANGE = re.compile(r'href="(/mercis/\d+)"')
NEIGHBOUR = re.compile(r'href="(/voisins/[A-Za-z0-9_-]{43}/[a-z0-9_-]+)"')


def post(who: Resident, path: str, form_page: str, fields: dict[str, str]):
    page = who.browser.get(form_page).text
    return who.browser.post(path, {**fields, "csrf": csrf_of(page)})


def text(who: Resident, path: str) -> str:
    return html.unescape(read(who, path).text)


def test_two_mercis_between_two_node_processes(cluster: Cluster):
    n0, n1 = cluster.add_nodes(2)
    cluster.connect(cluster.line_edges([n0, n1]), via_admin=True)
    marie, paul = resident(n0, "marie", "Marie D."), resident(n1, "paul", "Paul B.")
    ref = post_through_the_form(marie, "Prêt d'une échelle")
    wait_until(lambda: paul.reader.get(f"/annonces/{ref}").status == 200, SETTLE_S,
               message="n1 holds Marie's annonce")  # fmt: skip
    write(paul, f"/annonces/{ref}/repondre", "Je peux l'emprunter samedi ?")
    wait_until(lambda: "/messages/" in read(marie, "/messages").text, SETTLE_S,
               message="Paul's answer reaches n0")  # fmt: skip

    done = post(marie, f"/annonces/{ref}/pourvue", f"/annonces/{ref}", {})
    assert (done.status, done.location) == (303, f"/annonces/{ref}/qui-a-aide")
    helper = marie.browser.get(done.location).text
    paul_there = re.search(r'name="aide" value="(\d+)"', helper).group(1)
    named = marie.browser.post(done.location, {"aide": paul_there, "csrf": csrf_of(helper),
                                               "envoi": re.search(r'name="envoi" value="([^"]+)"',
                                                                  helper).group(1)})  # fmt: skip
    assert named.status == 303
    on_n0 = named.location
    merci = post(marie, on_n0, on_n0, {"merci": "Merci Paul, bonne grimpette !"})
    assert merci.status == 303

    listed = wait_until(lambda: EXCHANGE.findall(text(paul, "/mercis")), SETTLE_S,
                        message="the exchange reaches n1")  # fmt: skip
    on_n1 = listed[0]
    wait_until(lambda: "vous a déjà écrit un merci" in text(paul, on_n1), SETTLE_S,
               message="Marie's merci reaches n1")  # fmt: skip
    assert "bonne grimpette" not in text(paul, on_n1)
    assert post(paul, on_n1, on_n1, {"merci": "Merci à vous, Marie."}).status == 303
    assert "bonne grimpette" in text(paul, on_n1)
    wait_until(lambda: "Merci à vous, Marie." in text(marie, on_n0), SETTLE_S,
               message="Paul's merci reaches n0")  # fmt: skip

    # For an offer, Marie helped Paul: both nodes count it on both pages.
    wait_until(lambda: "A aidé 1 voisin" in text(marie, "/profil"), SETTLE_S,
               message="n0 counts the exchange")  # fmt: skip
    assert "A reçu de l'aide une fois" in text(paul, "/profil")
    paul_on_n0 = NEIGHBOUR.search(text(marie, on_n0)).group(1)
    assert "A reçu de l'aide une fois" in text(marie, paul_on_n0)
    marie_on_n1 = NEIGHBOUR.search(text(paul, on_n1)).group(1)
    shown = text(paul, marie_on_n1)
    assert "A aidé 1 voisin" in shown and "Merci à vous, Marie." in shown
