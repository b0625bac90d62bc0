"""Accounts through the real app: sign up, log in and out, password, CSRF, throttle."""

from __future__ import annotations

import pytest

from node.accounts import LOGIN_MAX_FAILURES_PER_ACCOUNT, LOGIN_MAX_FAILURES_PER_PAIR
from node.web.session import CSRF_COOKIE, SESSION_COOKIE
from storage import residents
from tests.node.web.conftest import PASSWORD, csrf_token, log_out, post_form, sign_up

GOOD = {"nom": "Marie D.", "identifiant": "marie", "mot_de_passe": PASSWORD,
        "confirmation": PASSWORD, "charte": "oui"}  # fmt: skip


async def members(db):
    """The login names of the node's members."""
    return sorted((await db.read(residents.logins)).values())


async def test_pages_carry_security_headers(web_client):
    response = await web_client.get("/")
    assert response.status == 200
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert '<html lang="fr">' in await response.text()


async def test_sign_up_logs_in_with_a_secure_session_cookie(web_client, db):
    response = await post_form(web_client, "/inscription", GOOD)
    assert response.status == 303 and response.headers["Location"] == "/profil?bienvenue=1"
    cookie = response.cookies[SESSION_COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    assert await members(db) == ["marie"]
    [member] = await db.read(residents.list_members)
    assert member.handle.startswith("marie-d-") and member.handle != "marie"  # public, not the login
    page = await web_client.get("/profil")
    assert page.status == 200 and f"@{member.handle}" in await page.text()


async def test_session_cookie_is_secure_behind_https(make_web_client):
    """Behind https every cookie is Secure, and __Host- prefixed: no Domain, Path=/."""
    client = await make_web_client(public_url="https://troc.example.org")
    response = await client.get("/inscription")
    cookie = response.cookies["__Host-" + CSRF_COOKIE]
    assert cookie["secure"] and cookie["path"] == "/" and not cookie["domain"]
    assert CSRF_COOKIE not in response.cookies
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


@pytest.mark.parametrize("token", [None, "", "forged-token-value"])
async def test_a_form_without_the_right_csrf_token_is_refused(web_client, db, token):
    await web_client.get("/inscription")
    data = dict(GOOD) if token is None else {**GOOD, "csrf": token}
    response = await web_client.post("/inscription", data=data, allow_redirects=False)
    assert response.status == 403
    assert "Action refusée" in await response.text()
    assert await members(db) == []


async def test_a_token_from_another_browser_is_refused(web_client, aiohttp_client, db):
    token = await csrf_token(web_client, "/inscription")
    other = await aiohttp_client(web_client.server)
    await other.get("/inscription")
    response = await other.post("/inscription", data={**GOOD, "csrf": token}, allow_redirects=False)
    assert response.status == 403 and await members(db) == []


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"nom": ""}, "nom", "Ce champ est obligatoire."),
    ({"nom": "x" * 65}, "nom", "64 caractères au plus"),
    ({"identifiant": ""}, "identifiant", "Ce champ est obligatoire."),
    ({"identifiant": "ab"}, "identifiant", "De 3 à 32 caractères"),
    ({"identifiant": "marie dupont"}, "identifiant", "De 3 à 32 caractères"),
    ({"identifiant": "x" * 33}, "identifiant", "32 caractères au plus"),
    ({"mot_de_passe": "court", "confirmation": "court"}, "mot_de_passe", "au moins 8 caractères"),
    ({"confirmation": "autre chose"}, "confirmation", "ne sont pas identiques"),
    ({"charte": ""}, "charte", "Acceptez la charte"),
    ({"nom": "Marie\u202eD"}, "nom", "caractères invisibles"),
])  # fmt: skip
async def test_sign_up_errors_are_shown_next_to_the_field(web_client, db, change, field, message):
    response = await post_form(web_client, "/inscription", {**GOOD, **change})
    assert response.status == 422
    html = await response.text()
    error = html.split(f'id="{field}-error"', 1)
    assert len(error) == 2 and message in error[1].split("</p>", 1)[0].replace("&#39;", "'")
    assert await members(db) == []


async def test_a_taken_handle_is_refused(web_client, db):
    await sign_up(web_client)
    await log_out(web_client)
    response = await post_form(web_client, "/inscription", GOOD)
    assert response.status == 422 and "déjà pris" in await response.text()


async def test_approval_policy_keeps_new_members_waiting(make_web_client, db):
    client = await make_web_client(registration="approval")
    response = await post_form(client, "/inscription", GOOD)
    assert response.status == 200 and "va valider votre inscription" in await response.text()
    assert SESSION_COOKIE not in response.cookies
    login = await post_form(client, "/connexion", {"identifiant": "marie", "mot_de_passe": PASSWORD})
    assert login.status == 403 and "attend encore la validation" in await login.text()
    member = await db.read(residents.member_named, "marie")
    await db.write(residents.set_member_state, member.handle, residents.ACTIVE)
    login = await post_form(client, "/connexion", {"identifiant": "marie", "mot_de_passe": PASSWORD})
    assert login.status == 303


async def test_login_failure_is_generic_and_login_then_logout_work(web_client):
    await sign_up(web_client)
    await log_out(web_client)
    for handle, password in (("marie", "mauvais mot"), ("personne", PASSWORD)):
        response = await post_form(web_client, "/connexion", {"identifiant": handle, "mot_de_passe": password})
        assert response.status == 401
        assert "Identifiant ou mot de passe incorrect." in await response.text()
    response = await post_form(web_client, "/connexion", {
        "identifiant": "Marie", "mot_de_passe": PASSWORD, "suite": "/mes-annonces"})  # fmt: skip
    assert response.status == 303 and response.headers["Location"] == "/mes-annonces"
    await log_out(web_client)
    assert (await web_client.get("/profil", allow_redirects=False)).status == 303


async def test_login_never_redirects_to_another_site(web_client):
    await sign_up(web_client)
    await log_out(web_client)
    response = await post_form(web_client, "/connexion", {
        "identifiant": "marie", "mot_de_passe": PASSWORD, "suite": "//evil.example/x"})  # fmt: skip
    assert response.headers["Location"] == "/"


async def test_login_attempts_are_limited_per_account(web_client):
    await sign_up(web_client)
    await log_out(web_client)
    for _ in range(LOGIN_MAX_FAILURES_PER_ACCOUNT):
        r = await post_form(web_client, "/connexion", {"identifiant": "marie", "mot_de_passe": "faux faux"})
        assert r.status == 401
    blocked = await post_form(web_client, "/connexion", {"identifiant": "marie", "mot_de_passe": PASSWORD})
    assert blocked.status == 429 and "Trop de tentatives" in await blocked.text()


async def test_password_change_checks_the_current_one(web_client):
    await sign_up(web_client)
    wrong = await post_form(web_client, "/mot-de-passe", {
        "actuel": "pas le bon", "nouveau": "nouveau secret", "confirmation": "nouveau secret"},
        page="/mot-de-passe")  # fmt: skip
    assert wrong.status == 422 and "pas votre mot de passe actuel" in await wrong.text()
    ok = await post_form(web_client, "/mot-de-passe", {
        "actuel": PASSWORD, "nouveau": "nouveau secret", "confirmation": "nouveau secret"},
        page="/mot-de-passe")  # fmt: skip
    assert ok.status == 200 and "mot de passe est changé" in await ok.text()
    await log_out(web_client)
    login = await post_form(web_client, "/connexion", {"identifiant": "marie", "mot_de_passe": "nouveau secret"})
    assert login.status == 303


async def test_english_is_chosen_by_cookie_or_accept_language(web_client):
    response = await web_client.get("/", headers={"Accept-Language": "en-GB,en;q=0.9"})
    html = await response.text()
    assert '<html lang="en">' in html and "Post a listing" in html
    response = await web_client.get("/langue/fr?suite=/a-propos", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/a-propos"
    html = await (await web_client.get("/", headers={"Accept-Language": "en"})).text()
    assert '<html lang="fr">' in html


async def test_unknown_pages_are_html_for_browsers(web_client):
    response = await web_client.get("/pas/de/page", headers={"Accept": "text/html"})
    assert response.status == 404 and "Page introuvable" in await response.text()


async def _failed_logins(client, count: int, forwarded_for: list[str]) -> None:
    """``count`` wrong passwords for marie, from a browser of its own (no device cookie)."""
    token = await csrf_token(client, "/connexion")
    for i in range(count):
        r = await client.post("/connexion", allow_redirects=False,
                              headers={"X-Forwarded-For": forwarded_for[i % len(forwarded_for)]},
                              data={"csrf": token, "identifiant": "marie", "mot_de_passe": "faux"})
        assert r.status == 401


async def _login_from(client, forwarded_for: str) -> int:
    token = await csrf_token(client, "/connexion")
    r = await client.post("/connexion", allow_redirects=False, headers={"X-Forwarded-For": forwarded_for},
                          data={"csrf": token, "identifiant": "marie", "mot_de_passe": PASSWORD})
    return r.status


async def _browser(aiohttp_client, client):
    """Another browser on the same node: no cookies of its own yet."""
    return await aiohttp_client(client.server)


async def test_behind_a_trusted_proxy_the_throttle_keys_on_the_forwarded_client(
    make_web_client, aiohttp_client
):
    client = await make_web_client(trusted_proxies="127.0.0.1, ::1")
    await sign_up(client)
    # Failures from one address (its own prefix is not believed): that address is refused.
    await _failed_logins(await _browser(aiohttp_client, client), LOGIN_MAX_FAILURES_PER_PAIR,
                         ["198.51.100.9, 203.0.113.7"])  # fmt: skip
    assert await _login_from(await _browser(aiohttp_client, client), "203.0.113.7") == 429
    assert await _login_from(await _browser(aiohttp_client, client), "10.9.9.9, 203.0.113.8") == 303


async def test_without_trusted_proxies_a_forwarded_header_changes_nothing(
    make_web_client, aiohttp_client
):
    client = await make_web_client()
    await sign_up(client)
    addresses = [f"203.0.113.{i}" for i in range(LOGIN_MAX_FAILURES_PER_PAIR)]
    await _failed_logins(await _browser(aiohttp_client, client), LOGIN_MAX_FAILURES_PER_PAIR,
                         addresses)  # fmt: skip
    assert await _login_from(await _browser(aiohttp_client, client), "192.0.2.200") == 429


async def test_a_garbled_forwarded_header_falls_back_to_the_proxy(make_web_client, aiohttp_client):
    client = await make_web_client(trusted_proxies="127.0.0.1")
    await sign_up(client)
    await _failed_logins(await _browser(aiohttp_client, client), LOGIN_MAX_FAILURES_PER_PAIR,
                         ["pas une adresse", "<script>", ""])  # fmt: skip
    assert await _login_from(await _browser(aiohttp_client, client), "") == 429
