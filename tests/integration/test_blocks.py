"""A block between residents of two real node processes (`troc run`), through the web forms.

Marie, on n0, blocks Paul, on n1, from their conversation: n0's courier
sends the block notice in the background, and from then on neither sees the
other's annonce on their own node and Paul can no longer write; lifting the
block travels the same way and restores everything.
"""

from __future__ import annotations

import re

import pytest

from tests.integration.crash import Resident, csrf_of, read
from tests.integration.harness import Cluster, wait_until
from tests.integration.test_whole_network import post_through_the_form, resident, write

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

SETTLE_S = 30.0
INBOX_LINK = re.compile(r'<a href="(/messages/\d+)">')


def status_of(who: Resident, path: str) -> int:
    return who.reader.get(path).status


def post(who: Resident, path: str, form_page: str, fields: dict[str, str]):
    page = who.browser.get(form_page).text
    return who.browser.post(path, {**fields, "csrf": csrf_of(page)})


def test_a_block_holds_on_both_nodes_and_unblocking_restores(cluster: Cluster):
    n0, n1 = cluster.add_nodes(2)
    cluster.connect(cluster.line_edges([n0, n1]), via_admin=True)
    marie, paul = resident(n0, "marie", "Marie D."), resident(n1, "paul", "Paul B.")
    marie_ref = post_through_the_form(marie, "Aide au jardin le samedi")
    paul_ref = post_through_the_form(paul, "Cours de tricot")
    wait_until(lambda: status_of(paul, f"/annonces/{marie_ref}") == 200
               and status_of(marie, f"/annonces/{paul_ref}") == 200, SETTLE_S,
               message="each node holds the other's annonce")  # fmt: skip
    on_n1 = write(paul, f"/annonces/{marie_ref}/repondre", "Bonjour Marie")
    inbox = wait_until(lambda: INBOX_LINK.findall(read(marie, "/messages").text), SETTLE_S,
                       message="Marie's inbox on n0")  # fmt: skip

    blocked = post(marie, inbox[0] + "/bloquer", inbox[0] + "/bloquer", {})
    assert (blocked.status, blocked.location) == (303, "/personnes-bloquees?fait=bloque")
    assert status_of(marie, f"/annonces/{paul_ref}") == 404  # her half, at once
    wait_until(lambda: status_of(paul, f"/annonces/{marie_ref}") == 404, SETTLE_S,
               message="n1 applied the block notice")  # fmt: skip
    assert "Cours de tricot" not in read(marie, "/").text
    assert "Aide au jardin le samedi" not in read(paul, "/").text
    closed = read(paul, on_n1).text
    assert "Cette conversation est close" in closed and "bloqu" not in closed.lower()
    refused = post(paul, on_n1, on_n1, {"message": "Pourquoi ?"})
    assert refused.status == 409

    page = read(marie, "/personnes-bloquees").text
    node_field = re.search(r'name="noeud" value="([^"]+)"', page).group(1)
    handle_field = re.search(r'name="pseudo" value="([^"]+)"', page).group(1)
    lifted = post(marie, "/personnes-bloquees/debloquer", "/personnes-bloquees",
                  {"noeud": node_field, "pseudo": handle_field})  # fmt: skip
    assert (lifted.status, lifted.location) == (303, "/personnes-bloquees?fait=debloque")
    wait_until(lambda: status_of(paul, f"/annonces/{marie_ref}") == 200, SETTLE_S,
               message="n1 applied the lifting")  # fmt: skip
    assert status_of(marie, f"/annonces/{paul_ref}") == 200
    write(paul, on_n1, "Merci, à samedi")
    wait_until(lambda: "Merci, à samedi" in read(marie, inbox[0]).text, SETTLE_S,
               message="Paul's message reaches Marie again")  # fmt: skip
