"""The admin API's overview (GET /v1/status) and member endpoints, on a real Unix socket.

The members are made through the node's real web sign-up form, and the
effects are checked through the web too: who can log in, whose session still
works, which password opens the account.
"""

from __future__ import annotations

import re

import aiohttp
import pytest

from node import annonces as node_annonces
from node.accounts import temporary_password
from storage import annonces as annonce_store
from storage import outbox as outbox_store
from storage.schema import annonces
from tests.factories import make_signed
from tests.node.harness import Clock, make_nodes, peer, served_admin

PASSWORD = "un mot de passe solide"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
async def node(db, spare_db, tmp_path):
    """Node A (registration by approval) with its admin socket; node B, its peer, not served."""
    clock = Clock()
    a, b = await make_nodes(db, spare_db, tmp_path, ["Maison A", "Maison B"], clock)
    a.options["registration"] = "approval"
    await a.start(background_tasks=False)
    async with served_admin(a) as admin:
        yield a, b, admin
    await a.stop()


class Browser:
    """A resident's browser on the node's web view: cookies, CSRF tokens."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def close(self) -> None:
        await self.session.close()

    async def get(self, path: str) -> int:
        async with self.session.get(self.url + path, allow_redirects=False) as response:
            return response.status

    async def post(self, path: str, data: dict) -> int:
        async with self.session.get(self.url + "/connexion") as page:
            token = CSRF.search(await page.text()).group(1)
        async with self.session.post(self.url + path, data={"csrf": token, **data},
                                     allow_redirects=False) as response:  # fmt: skip
            return response.status

    async def sign_up(self, handle: str) -> int:
        return await self.post("/inscription", {
            "nom": handle.title(), "identifiant": handle, "mot_de_passe": PASSWORD,
            "confirmation": PASSWORD, "charte": "oui",
        })  # fmt: skip

    async def log_in(self, handle: str, password: str = PASSWORD) -> int:
        return await self.post("/connexion", {"identifiant": handle, "mot_de_passe": password})


@pytest.fixture
async def browsers(node):
    a, _, _ = node
    opened = []

    def open_browser() -> Browser:
        opened.append(Browser(a.url))
        return opened[-1]

    yield open_browser
    for browser in opened:
        await browser.close()


async def test_status_counts_members_annonces_peers_and_outbox(node, browsers):
    a, b, admin = node
    status, body = await admin.call("GET", "/v1/status")
    assert status == 200
    assert (body["node_id"], body["name"], body["url"]) == (a.key.node_id_text, "Maison A", a.url)
    assert body["fingerprint"] == a.key.fingerprint and body["version"]
    assert body["members"] == {"active": 0, "pending": 0, "suspended": 0}
    assert body["annonces"] == {"live": 0, "withdrawn": 0, "own": 0, "hidden": 0,
                                "by_origin": []}  # fmt: skip
    assert (body["peers"], body["outbox"], body["messages"]) == ([], 0, {"pending_deliveries": 0})

    await browsers().sign_up("marie")
    await peer(a, b)
    await a.post("Aide au jardin")
    withdrawn = await a.post("Vélo à prêter")
    await node_annonces.withdraw(a.app, withdrawn.annonce.uid)
    relayed = make_signed(b.key, now=int(a.clock()), title="Cours de couture")
    await a.db.write(annonce_store.store_revisions, [relayed], now=int(a.clock()), source=b.node_id)
    async with a.db.engine.begin() as conn:  # the operator hid it
        await conn.execute(annonces.update().where(annonces.c.id == relayed.id).values(hidden=True))
    a.clock.advance(90)

    _, body = await admin.call("GET", "/v1/status")
    assert body["members"] == {"active": 0, "pending": 1, "suspended": 0}
    counts = body["annonces"]
    assert (counts["live"], counts["withdrawn"], counts["own"], counts["hidden"]) == (2, 1, 1, 1)
    by_origin = {o["origin"]: o for o in counts["by_origin"]}
    assert by_origin[a.key.node_id_text] == {
        "origin": a.key.node_id_text, "fingerprint": a.key.fingerprint, "name": "Maison A",
        "is_peer": False, "live": 1, "withdrawn": 1}  # fmt: skip
    assert (by_origin[b.key.node_id_text]["name"], by_origin[b.key.node_id_text]["is_peer"]) == (
        "Maison B", True)  # fmt: skip
    (listed,) = body["peers"]
    pending = (await a.db.read(outbox_store.pending_counts))[b.node_id]
    assert pending >= 2 and listed["outbox"] == pending == body["outbox"]
    assert (listed["name"], listed["state"], listed["last_sync"], listed["lag_s"]) == (
        "Maison B", "active", None, None)  # fmt: skip
    assert body["uptime_s"] == 90 and body["now"] == body["started_at"] + 90


async def test_members_are_listed_by_state_and_a_bad_state_is_refused(node, browsers):
    _, _, admin = node
    for handle in ("marie", "paul"):
        assert await browsers().sign_up(handle) == 200  # approval: no session yet
    status, listed = await admin.call("GET", "/v1/members")
    assert status == 200
    assert [(m["login"], m["display_name"], m["state"]) for m in listed] == [
        ("marie", "Marie", "pending"), ("paul", "Paul", "pending")]  # fmt: skip
    await admin.call("POST", "/v1/members/paul/approve")
    _, active = await admin.call("GET", "/v1/members?state=active")
    assert [m["login"] for m in active] == ["paul"]
    status, problem = await admin.call("GET", "/v1/members?state=banni")
    assert (status, problem["field"]) == (422, "state")


async def test_approving_lets_a_pending_member_log_in_once(node, browsers):
    _, _, admin = node
    browser = browsers()
    await browser.sign_up("marie")
    assert await browser.log_in("marie") == 403  # waiting for approval
    status, approved = await admin.call("POST", "/v1/members/marie/approve")
    assert (status, approved["state"]) == (200, "active")
    assert await browser.log_in("marie") == 303
    status, problem = await admin.call("POST", "/v1/members/marie/approve")
    assert (status, problem["code"], problem["detail"]) == (409, "conflict", "marie is already active")


async def test_suspending_ends_every_session_and_stops_posting(node, browsers):
    _, _, admin = node
    phone, laptop = browsers(), browsers()
    await phone.sign_up("marie")
    await admin.call("POST", "/v1/members/marie/approve")
    assert await phone.log_in("marie") == 303 and await laptop.log_in("marie") == 303
    assert await phone.get("/annonces/nouvelle") == 200
    status, suspended = await admin.call("POST", "/v1/members/marie/suspend")
    assert (status, suspended["state"], suspended["sessions_ended"]) == (200, "suspended", 2)
    for browser in (phone, laptop):
        assert await browser.get("/mes-annonces") == 303  # logged out: sent to the login page
    assert await phone.log_in("marie") == 303  # may still read...
    assert await phone.get("/annonces/nouvelle") == 403  # ...but not post
    status, problem = await admin.call("POST", "/v1/members/marie/suspend")
    assert (status, problem["detail"]) == (409, "marie is already suspended")
    status, problem = await admin.call("POST", "/v1/members/marie/approve")
    assert (status, problem["detail"]) == (409, "marie is suspended, not pending")
    status, back = await admin.call("POST", "/v1/members/marie/unsuspend")
    assert (status, back["state"]) == (200, "active")
    assert await phone.get("/annonces/nouvelle") == 200
    status, problem = await admin.call("POST", "/v1/members/marie/unsuspend")
    assert (status, problem["detail"]) == (409, "marie is already active")


async def test_a_reset_password_logs_in_and_the_old_one_and_sessions_do_not(node, browsers):
    _, _, admin = node
    old, new = browsers(), browsers()
    await old.sign_up("marie")
    await admin.call("POST", "/v1/members/marie/approve")
    assert await old.log_in("marie") == 303
    status, reset = await admin.call("POST", "/v1/members/marie/reset-password")
    assert status == 200 and reset["sessions_ended"] == 1
    password = reset["password"]
    assert await old.get("/mes-annonces") == 303
    assert await old.log_in("marie") == 401  # the old password no longer works
    assert await new.log_in("marie", password) == 303
    changed = await new.post("/mot-de-passe", {"actuel": password, "nouveau": "mon nouveau secret",
                                               "confirmation": "mon nouveau secret"})  # fmt: skip
    assert changed == 200
    assert await browsers().log_in("marie", "mon nouveau secret") == 303


@pytest.mark.parametrize("action", ["approve", "suspend", "unsuspend", "reset-password"])
async def test_an_unknown_handle_is_a_404_naming_it(node, action):
    _, _, admin = node
    status, problem = await admin.call("POST", f"/v1/members/personne/{action}")
    assert (status, problem["code"]) == (404, "not-found")
    assert problem["detail"] == "no member with the handle or login 'personne'"


def test_temporary_passwords_are_long_unambiguous_and_different():
    made = {temporary_password() for _ in range(50)}
    assert len(made) == 50
    for password in made:
        assert re.fullmatch(r"[a-hjkmnp-z2-9]{4}(-[a-hjkmnp-z2-9]{4}){3}", password)
