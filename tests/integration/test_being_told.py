"""Being told across real `troc run` processes, with a real SMTP server on loopback.

Karim, on node B, gives and confirms his address, says where he works, and
saves "jardinage within 5 km of work"; Odette posts a fitting annonce on
node A: it reaches B, and B mails Karim once, with a one-click unsubscribe
that works without logging in. Karim answers; Odette, on A, is mailed once.
Residents act through the web forms, as a browser would.
"""

from __future__ import annotations

import re
import urllib.request

import pytest

from tests.integration.crash import Resident, csrf_of, sign_up, submit
from tests.integration.harness import Cluster, wait_until
from tests.integration.test_whole_network import post_through_the_form, write
from tests.mailserver import MailServer

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

SETTLE_S = 45.0
BOE = "47031"
_LINK = re.compile(r"https?://\S+/adresse/confirmer/[A-Za-z0-9_-]+")
_SAVED = re.compile(r"^/recherches")


@pytest.fixture
def relay():
    server = MailServer().start()
    yield server
    server.stop()


def _env(relay: MailServer) -> dict[str, str]:
    # Any hour: CI may run at night, when notifications would wait for the morning.
    return {"TROC_SMTP_HOST": "127.0.0.1", "TROC_SMTP_PORT": str(relay.port),
            "TROC_SMTP_SECURITY": "none", "TROC_MAIL_FROM": "troc@quartier.example",
            "TROC_QUIET_HOURS": "none"}  # fmt: skip


def mails_to(relay: MailServer, address: str) -> list:
    return [m for m in relay.received if address in m.recipients]


def give_and_confirm(resident: Resident, relay: MailServer, address: str) -> None:
    page = resident.browser.get("/preferences").text
    sent = resident.browser.post("/preferences/adresse", {"csrf": csrf_of(page), "adresse": address})
    assert sent.status == 303, sent.text[:300]
    [mail] = wait_until(lambda: mails_to(relay, address), SETTLE_S, message=f"{address}'s link")
    link = _LINK.search(mail.part("plain")).group(0)
    path = link.split("://", 1)[1].split("/", 1)[1]
    confirmed = resident.browser.get("/" + path)
    assert confirmed.status == 200, confirmed.text[:300]
    assert "confirmée" in resident.browser.get("/preferences").text


def choose(resident: Resident, **cadences: str) -> None:
    page = resident.browser.get("/preferences").text
    fields = {"csrf": csrf_of(page), "distance": "5", "quand_message": "immediately",
              "quand_expiry": "immediately", "quand_alert": "immediately", "quand_match": "never",
              "quand_digest": "never", **{f"quand_{k}": v for k, v in cadences.items()}}  # fmt: skip
    saved = resident.browser.post("/preferences", fields)
    assert saved.status == 303, saved.text[:500]


def work_in(resident: Resident, commune: str) -> None:
    page = resident.browser.get("/profil").text
    saved = resident.browser.post("/profil", {"csrf": csrf_of(page), "nom": resident.name,
                                              "presentation": "", "competences": "",
                                              "domicile": "", "travail": commune})  # fmt: skip
    assert saved.status == 303, saved.text[:500]


def test_a_saved_search_on_b_is_mailed_once_for_an_annonce_of_a_and_a_reply_mails_once(
    cluster: Cluster, relay: MailServer,
):  # fmt: skip
    a, b = cluster.add_nodes(2, env=_env(relay))
    cluster.connect([(a, b)], via_admin=True)
    odette = Resident(a, "A", "odette", "Odette M.", "mot de passe d'odette")
    karim = Resident(b, "B", "karim", "Karim B.", "mot de passe de karim")
    sign_up(odette)
    sign_up(karim)
    give_and_confirm(odette, relay, "odette@example.org")
    give_and_confirm(karim, relay, "karim@example.org")
    choose(odette)
    choose(karim)
    work_in(karim, BOE)
    page = karim.browser.get("/?q=jardinage&autour=travail&rayon=5").text
    _, found = submit(karim.browser, "/recherches", {"csrf": csrf_of(page), "q": "jardinage",
                                                     "autour": "travail", "rayon": "5"}, _SAVED)  # fmt: skip
    assert found, "the search was not saved"

    ref = post_through_the_form(odette, "Jardinage au potager du Pin")  # in Agen, 4 km from Boé
    alerts = wait_until(lambda: [m for m in mails_to(relay, "karim@example.org")
                                 if "Jardinage au potager du Pin" in m.part("plain")],
                        SETTLE_S, message="Karim's alert")  # fmt: skip
    assert len(alerts) == 1
    mail = alerts[0].message
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "Jardinage au potager du Pin" in mail["Subject"]
    assert f"/annonces/{ref}" in alerts[0].part("plain")

    # One-click unsubscribe, as a mail client sends it: a POST, no cookie, no CSRF token.
    url = re.fullmatch(r"\s*<(\S+)>\s*", str(mail["List-Unsubscribe"])).group(1)
    request = urllib.request.Request(url, data=b"List-Unsubscribe=One-Click", method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200
    prefs = karim.browser.get("/preferences").text
    assert re.search(r'name="quand_alert" value="never"[^>]*checked', prefs), "alerts are now never"

    # Karim answers; Odette is mailed once, on her node.
    write(karim, f"/annonces/{ref}/repondre", "Bonjour, je peux venir samedi.")
    told = wait_until(lambda: [m for m in mails_to(relay, "odette@example.org")
                               if "vous a écrit" in str(m.message["Subject"])],
                      SETTLE_S, message="Odette's mail")  # fmt: skip
    assert len(told) == 1 and told[0].message["Subject"] == "Karim B. vous a écrit"
    later = len(mails_to(relay, "odette@example.org"))
    cluster.nodes[0].cli("mail", "status")  # the queue is readable by the operator
    assert len(mails_to(relay, "odette@example.org")) == later
