"""The association's desk across real `troc run` processes.

On node A the operator makes Claire a coordinator with `troc members
grant-coordinator`; Claire registers Mme Martin, who has no computer, and
posts a request for her. Karim, on node B, answers it; the reply reaches
Claire's queue on A, she calls Mme Martin back, marks it, and answers for
her. On B, Karim reads « écrit par l'association pour Mme Martin »; the
annonce's page on B shows no marker (the annonce record has no such field),
A's does. The phone number never leaves A.
"""

from __future__ import annotations

import re
import sqlite3
from contextlib import closing

import pytest

from tests.integration.crash import Browser, Resident, csrf_of, sign_up
from tests.integration.harness import Cluster, wait_until
from tests.integration.test_whole_network import write

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

SETTLE_S = 45.0
PHONE = "05 53 11 22 33"
_MEMBER = re.compile(r"^/permanence/membres/([a-z0-9-]+)\?fait=inscrit$")
_CALL = re.compile(r'action="/permanence/rappels/(\d+)"')
_CONVERSATION = re.compile(r'href="(/permanence/membres/[a-z0-9-]+/messages/\d+)#dernier"')


def post(browser: Browser, path: str, fields: dict[str, str]):
    page = browser.get(path).text
    token = re.search(r'name="envoi" value="([^"]+)"', page)
    extra = {"envoi": token.group(1)} if token else {}
    return browser.post(path, {"csrf": csrf_of(page), **extra, **fields})


def test_a_reply_from_another_node_reaches_the_queue_and_is_answered_for_the_member(
    cluster: Cluster,
):  # fmt: skip
    a, b = cluster.add_nodes(2)
    cluster.connect([(a, b)], via_admin=True)
    claire = Resident(a, "A", "claire", "Claire C.", "mot de passe de claire")
    karim = Resident(b, "B", "karim", "Karim B.", "mot de passe de karim")
    sign_up(claire)
    sign_up(karim)

    # The operator's commands, against the live node.
    unknown = a.cli("members", "grant-coordinator", "personne", check=False)
    assert unknown.returncode == 1 and "personne" in unknown.stderr
    assert len(unknown.stderr.strip().splitlines()) == 1
    assert claire.browser.get("/permanence").status == 403
    granted = a.cli("members", "grant-coordinator", "claire")
    assert "coordinator" in granted.stdout
    twice = a.cli("members", "grant-coordinator", "claire", check=False)
    assert twice.returncode == 1 and "already" in twice.stderr
    odile = Resident(a, "A", "odile", "Odile P.", "mot de passe d'odile")
    sign_up(odile)
    a.cli("members", "suspend", "odile")
    suspended = a.cli("members", "grant-coordinator", "odile", check=False)
    assert suspended.returncode == 1 and "suspended" in suspended.stderr
    assert [m["desk"] for m in a.cli_json("members", "list", "--json")
            if m["login"] == "odile"] == [None]  # fmt: skip

    # Claire registers Mme Martin and posts for her.
    created = post(claire.browser, "/permanence/nouveau", {
        "nom": "Mme Martin", "commune": "47001", "joindre": "phone", "telephone": PHONE,
        "consentement": "oui"})  # fmt: skip
    assert created.status == 303, created.text[:300]
    handle = _MEMBER.match(created.location).group(1)
    listed = a.cli_json("members", "list", "--json")
    assert [m["desk"] for m in listed if m["login"] == "claire"] == ["coordinator"]
    assert [m["desk"] for m in listed if m["handle"] == handle] == ["accompanied"]
    assert "accompanied" in a.cli("members", "list").stdout
    no_password = a.cli("members", "reset-password", handle, check=False)
    assert no_password.returncode == 1 and "accompanied member" in no_password.stderr
    published = post(claire.browser, f"/permanence/membres/{handle}/publier", {
        "type": "request", "categorie": "coup-de-main", "titre": "Porter mes courses du marché",
        "texte": "Le mardi matin.", "commune": "domicile", "duree": "30"})  # fmt: skip
    assert published.status == 303, published.text[:300]
    page = claire.browser.get(f"/permanence/membres/{handle}").text
    ref = re.search(r'href="/annonces/([A-Za-z0-9_-]{64})"', page).group(1)
    assert "publiée par l&#39;association pour Mme Martin" in claire.browser.get(f"/annonces/{ref}").text

    # Karim, on B, answers; B's page of the annonce has no marker.
    wait_until(lambda: karim.browser.get(f"/annonces/{ref}").status == 200, SETTLE_S,
               message="the annonce on B")  # fmt: skip
    assert "association pour" not in karim.browser.get(f"/annonces/{ref}").text
    conversation_on_b = write(karim, f"/annonces/{ref}/repondre", "Je peux passer mardi à 10 h.")

    # The reply reaches Claire's queue on A; she marks Mme Martin called back.
    home = wait_until(lambda: (lambda text: text if "Je peux passer mardi" in text else None)(
        claire.browser.get("/permanence").text), SETTLE_S, message="the reply in the queue")
    assert "Karim B. a écrit à Mme Martin" in home and "à rappeler" in home and PHONE in home
    message_id = _CALL.search(home).group(1)
    marked = claire.browser.post(f"/permanence/rappels/{message_id}", {"csrf": csrf_of(home)})
    assert marked.status == 303
    home = claire.browser.get("/permanence").text
    assert "Rappelé(e) par Claire C." in home and f'action="/permanence/rappels/{message_id}"' not in home

    # She answers for Mme Martin; Karim reads it on B, marked as the association's.
    path = _CONVERSATION.search(home).group(1)
    replied = post(claire.browser, path, {"message": "Mme Martin vous attend mardi, merci !"})
    assert replied.status == 303, replied.text[:300]
    seen = wait_until(lambda: (lambda text: text if "vous attend mardi" in text else None)(
        karim.browser.get(conversation_on_b).text), SETTLE_S, message="the answer on B")
    assert "écrit par l&#39;association pour Mme Martin" in seen
    assert seen.count("écrit par l&#39;association") == 1

    # The number never left A: B holds it nowhere.
    for node in (b,):
        with closing(sqlite3.connect(f"file:{node.db_path}?mode=ro", uri=True)) as conn:
            tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            for table in tables:
                rows = conn.execute(f'SELECT * FROM "{table}"').fetchall()
                assert not any(PHONE in str(value) for row in rows for value in row), table

    revoked = a.cli("members", "revoke-coordinator", "claire")
    assert handle in revoked.stdout  # left without a coordinator
    assert claire.browser.get("/permanence").status == 403
