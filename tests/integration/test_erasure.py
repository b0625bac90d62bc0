"""Deleting an account across real `troc run` processes: A - B - C in a line.

Marie, on A, posts an annonce that reaches B and C; Paul, on B, answers it
and she replies. She downloads her data and deletes her account through the
web forms, as a browser would: her annonce is withdrawn on every node, and
Paul's conversation on B shows « ancien membre » and « message supprimé ».
The operator's `troc members delete` of her handle is then one line.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.integration.crash import Resident, csrf_of, sign_up
from tests.integration.harness import Cluster, wait_until
from tests.integration.test_whole_network import post_through_the_form, write

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

SETTLE_S = 45.0
_LINK = re.compile(r'href="(/messages/\d+)"')


def state_on(node, ref: str) -> str | None:
    return next((a["state"] for a in node.annonces() if a["ref"] == ref), None)


def conversation_link(resident: Resident) -> str | None:
    found = _LINK.search(resident.browser.get("/messages").text)
    return found.group(1) if found else None


def page_with(resident: Resident, path: str, text: str) -> str | None:
    page = resident.reader.get(path).text
    return page if text in page else None


def test_a_deleted_account_leaves_every_node_and_the_conversation_is_anonymised(
        cluster: Cluster):  # fmt: skip
    a, b, c = cluster.add_nodes(3)
    cluster.connect([(a, b), (b, c)], via_admin=True)
    marie = Resident(a, "A", "marie", "Marie Dupont", "mot de passe de marie")
    paul = Resident(b, "B", "paul", "Paul Bernard", "mot de passe de paul")
    sign_up(marie)
    sign_up(paul)
    ref = post_through_the_form(marie, "Aide au jardin du Pin")
    wait_until(lambda: state_on(c, ref) == "open", SETTLE_S, message="the annonce on C")
    on_b = write(paul, f"/annonces/{ref}/repondre", "Bonjour Marie, samedi ?")
    on_a = wait_until(lambda: conversation_link(marie), SETTLE_S, message="Marie's inbox")
    write(marie, on_a, "Oui, 10 h chez moi.")
    wait_until(lambda: "Oui, 10 h chez moi." in paul.reader.get(on_b).text, SETTLE_S,
               message="Marie's reply on B")  # fmt: skip

    page = marie.browser.get("/compte/donnees").text
    download = marie.browser.post("/compte/donnees", {"csrf": csrf_of(page)})
    assert download.status == 200
    tables = json.loads(download.text)["tables"]
    assert [row["title"] for row in tables["annonces"]] == ["Aide au jardin du Pin"]
    assert {m["body"] for m in tables["messages"]} == {"Bonjour Marie, samedi ?",
                                                        "Oui, 10 h chez moi."}  # fmt: skip
    handle = tables["members"][0]["handle"]

    page = marie.browser.get("/compte/supprimer").text
    deleted = marie.browser.post("/compte/supprimer", {"csrf": csrf_of(page),
                                                       "mot_de_passe": marie.password})  # fmt: skip
    assert deleted.status == 200 and "Compte supprimé" in deleted.text
    for node in (a, b, c):
        wait_until(lambda node=node: state_on(node, ref) == "withdrawn", SETTLE_S,
                   message=f"the tombstone on {node.name}")  # fmt: skip
    seen = wait_until(lambda: page_with(paul, on_b, "ancien membre"), SETTLE_S,
                      message="« ancien membre » on B")  # fmt: skip
    assert "Marie Dupont" not in seen and "Oui, 10 h chez moi." not in seen
    assert "message supprimé" in seen and "Bonjour Marie, samedi ?" in seen

    again = a.cli("members", "delete", handle, "--yes", check=False)
    assert again.returncode == 1
    assert f"the account {handle} was deleted already" in again.stderr + again.stdout
