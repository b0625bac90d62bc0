"""What a hostile visitor tried against accounts, through the real app, and must not get.

- a redirect after login or a language change to another site, whatever the
  characters slipped into ``suite``;
- locking a resident out by failing on their public name: the login name is
  private, and failures slow strangers down without refusing the resident's
  own browser;
- more checks than the limit by sending wrong passwords all at once;
- a CSRF token minted without a session used with a resident's session.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from node.accounts import LOGIN_MAX_FAILURES_PER_PAIR, LOGIN_SLOWDOWN_S
from storage import residents
from tests.node.web.conftest import PASSWORD, csrf_token, post_form, sign_up

EVIL_NEXT = [
    "//evil.example", "/\t/evil.example", "/\n/evil.example",
    "/\r/evil.example", "/\\evil.example", "/\\\\evil.example", "\\\\evil.example",
    "https://evil.example", "http:evil.example", "/\x00/evil.example", " //evil.example",
    "/\u0085/evil.example", "javascript:alert(1)", "/" + "a" * 3000,
]  # fmt: skip


@pytest.mark.parametrize("target", EVIL_NEXT)
async def test_a_language_change_never_leaves_the_site(web_client, target):
    response = await web_client.get("/langue/fr", params={"suite": target}, allow_redirects=False)
    assert response.status == 303
    assert response.headers["Location"] == "/"


async def test_a_language_change_raw_query_never_leaves_the_site(web_client):
    """As sent by an attacker's link, percent-encoded, not through a client library."""
    for raw in ("/%09/evil.example", "/%0a/evil.example", "/%0d/evil.example", "%2F%2Fevil.example",
                "/%5Cevil.example", "/%E2%80%A8/evil.example"):  # fmt: skip
        response = await web_client.get(f"/langue/fr?suite={raw}", allow_redirects=False)
        location = response.headers["Location"]
        assert location == "/" or (location.startswith("/") and not location.startswith("//")), raw


async def test_a_same_site_path_is_kept(web_client):
    response = await web_client.get("/langue/en", params={"suite": "/annonces/nouvelle?x=1"},
                                    allow_redirects=False)  # fmt: skip
    assert response.headers["Location"] == "/annonces/nouvelle?x=1"


@pytest.mark.parametrize("target", EVIL_NEXT)
async def test_a_login_never_redirects_to_another_site(web_client, aiohttp_client, target):
    await sign_up(web_client)
    browser = await aiohttp_client(web_client.server)
    response = await post_form(browser, "/connexion", {"identifiant": "marie",
                               "mot_de_passe": PASSWORD, "suite": target})  # fmt: skip
    assert (response.status, response.headers["Location"]) == (303, "/")


async def test_the_public_handle_does_not_log_in(web_client, aiohttp_client, db):
    await sign_up(web_client)
    [member] = await db.read(residents.list_members)
    browser = await aiohttp_client(web_client.server)
    response = await post_form(browser, "/connexion", {"identifiant": member.handle,
                                                       "mot_de_passe": PASSWORD})  # fmt: skip
    assert response.status == 401


async def _attempt(client, token: str, password: str, address: str) -> int:
    response = await client.post("/connexion", allow_redirects=False,
                                 headers={"X-Forwarded-For": address},
                                 data={"csrf": token, "identifiant": "marie",
                                       "mot_de_passe": password})  # fmt: skip
    return response.status


async def test_thirty_wrong_passwords_at_once_are_checked_no_more_than_the_limit(
    make_web_client, aiohttp_client
):
    """Each attempt is counted before it is checked: five get 401, the rest 429, none a 500."""
    client = await make_web_client(trusted_proxies="127.0.0.1")
    await sign_up(client)
    attacker = await aiohttp_client(client.server)
    token = await csrf_token(attacker, "/connexion")
    statuses = await asyncio.gather(*(
        _attempt(attacker, token, f"faux {i}", "198.51.100.66") for i in range(30)
    ))  # fmt: skip
    assert statuses.count(401) == LOGIN_MAX_FAILURES_PER_PAIR
    assert statuses.count(429) == 30 - LOGIN_MAX_FAILURES_PER_PAIR


async def test_a_stranger_cannot_lock_a_resident_out(make_web_client, aiohttp_client):
    """Failures from strangers everywhere: the resident's own browser logs in at once,
    a new browser of theirs logs in too, only slower."""
    client = await make_web_client(trusted_proxies="127.0.0.1")
    await sign_up(client)  # this browser now carries marie's device token
    attackers = [await aiohttp_client(client.server) for _ in range(4)]
    for n, attacker in enumerate(attackers):
        token = await csrf_token(attacker, "/connexion")
        for i in range(LOGIN_MAX_FAILURES_PER_PAIR + 3):
            await _attempt(attacker, token, f"faux {i}", f"198.51.100.{n}")
    token = await csrf_token(client, "/connexion")
    started = time.monotonic()
    assert await _attempt(client, token, PASSWORD, "198.51.100.1") == 303  # even from theirs
    assert time.monotonic() - started < LOGIN_SLOWDOWN_S
    new_browser = await aiohttp_client(client.server)
    token = await csrf_token(new_browser, "/connexion")
    started = time.monotonic()
    assert await _attempt(new_browser, token, PASSWORD, "203.0.113.50") == 303
    assert time.monotonic() - started >= LOGIN_SLOWDOWN_S  # slowed, not refused


async def test_a_known_browser_is_still_limited_by_its_own_failures(web_client):
    await sign_up(web_client)
    token = await csrf_token(web_client, "/connexion")
    for i in range(LOGIN_MAX_FAILURES_PER_PAIR):
        assert await _attempt(web_client, token, f"faux {i}", "") == 401
    assert await _attempt(web_client, token, PASSWORD, "") == 429


async def test_a_csrf_token_made_without_a_session_is_refused_with_one(web_client):
    """The token/cookie pair of an anonymous page does not work once a session is sent."""
    anonymous_token = await csrf_token(web_client, "/connexion")
    await sign_up(web_client)  # the same browser, now with a session cookie
    response = await web_client.post("/deconnexion", data={"csrf": anonymous_token},
                                     allow_redirects=False)  # fmt: skip
    assert response.status == 403
    assert (await web_client.get("/profil", allow_redirects=False)).status == 200  # still in
    fresh = await csrf_token(web_client, "/profil")
    assert fresh != anonymous_token
    response = await web_client.post("/deconnexion", data={"csrf": fresh}, allow_redirects=False)
    assert response.status == 303
