"""The limits of new accounts, through the real forms (both backends).

A new account publishes at most ``new_member_annonces_per_day`` annonces and
answers at most ``new_member_answers_per_day`` annonces in 24 hours, for its
first ``new_member_days`` days; the page says how many and until when, and
keeps what was written. 0 turns a limit off; settings out of range stop the
node with a clear line.
"""

from __future__ import annotations

import html

import pytest
from aiohttp.test_utils import TestClient

from node.errors import ConfigError
from node.newcomers import DAY_S
from node.settings import load_settings
from storage import annonces as annonce_store
from tests.node.web.conftest import post_form, sign_up
from tests.node.web.test_annonces import GOOD, publish

LIMITS = {"new_member_days": 7, "new_member_annonces_per_day": 3, "new_member_answers_per_day": 2}


async def post(client, title: str):
    return await post_form(client, "/annonces/nouvelle",
                           {**GOOD, "titre": title, "action": "publier"},
                           page="/annonces/nouvelle")  # fmt: skip


async def held(db) -> int:
    return len(await db.read(annonce_store.list_annonces))


async def test_a_new_member_hammering_the_form_publishes_the_day_s_limit_and_is_told_until_when(
    make_web_client, db, clock
):
    client = await make_web_client(**LIMITS)
    await sign_up(client)
    for n in range(3):
        assert (await post(client, f"Annonce {n}")).status == 303
        clock.now += 60
    for n in range(10):  # one request after another: none goes through
        refused = await post(client, "Une de trop")
        assert refused.status == 429
    page = html.unescape(await refused.text())
    assert "Vous avez déjà publié 3 annonces ces dernières 24 heures" in page
    assert "en publier 3 par jour" in page
    assert 'value="Une de trop"' in page  # the form keeps its text
    assert "Je taille les haies le samedi." in page
    assert await held(db) == 3
    clock.now += DAY_S - 180 + 1  # the first one is 24 hours old
    assert (await post(client, "Le lendemain")).status == 303
    assert await held(db) == 4


async def test_an_account_older_than_the_new_days_and_a_limit_of_zero_are_not_held(
    make_web_client, db, clock
):
    client = await make_web_client(**LIMITS)
    await sign_up(client)
    clock.now += 7 * DAY_S
    for n in range(5):
        assert (await post(client, f"Annonce {n}")).status == 303
    other = await make_web_client(**{**LIMITS, "new_member_annonces_per_day": 0})
    await sign_up(other, "paul", "Paul B.")
    for n in range(5):
        assert (await post(other, f"Sans limite {n}")).status == 303
    assert await held(db) == 10


async def test_a_new_member_answers_the_day_s_limit_and_keeps_the_message(make_web_client, clock):
    marie = await make_web_client(**LIMITS)
    await sign_up(marie)
    refs = [await publish(marie, titre=f"Annonce {n}") for n in range(3)]
    paul = TestClient(marie.server)
    await paul.start_server()
    try:
        await sign_up(paul, "paul", "Paul B.")
        for ref in refs[:2]:
            path = f"/annonces/{ref}/repondre"
            assert (await post_form(paul, path, {"message": "Bonjour"}, page=path)).status == 303
        path = f"/annonces/{refs[2]}/repondre"
        refused = await post_form(paul, path, {"message": "Mon message gardé"}, page=path)
        assert refused.status == 429
        page = html.unescape(await refused.text())
        assert "Vous avez déjà répondu à 2 annonces" in page and "Mon message gardé" in page
        # Replies within a conversation are not answers: they still go.
        inbox = await paul.get("/messages")
        assert inbox.status == 200
    finally:
        await paul.session.close()


@pytest.mark.parametrize("name, value", [
    ("NEW_MEMBER_DAYS", "-1"), ("NEW_MEMBER_DAYS", "366"),
    ("NEW_MEMBER_ANNONCES_PER_DAY", "-3"), ("NEW_MEMBER_ANSWERS_PER_DAY", "1001"),
])  # fmt: skip
def test_new_member_settings_out_of_range_stop_the_node_with_a_clear_line(tmp_path, name, value):
    with pytest.raises(ConfigError) as refused:
        load_settings(tmp_path, {f"TROC_{name}": value})
    assert name.lower() in str(refused.value) and "must be 0 to" in str(refused.value)


def test_the_defaults_hold_new_accounts(tmp_path):
    settings = load_settings(tmp_path, {})
    assert (settings.new_member_days, settings.new_member_annonces_per_day,
            settings.new_member_answers_per_day) == (7, 3, 10)  # fmt: skip
