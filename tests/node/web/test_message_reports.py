"""Reporting a message of a conversation, through the real forms (both backends).

Only a message the other member wrote, in one's own conversation, can be
reported; the report keeps the message's text for this node's moderators and
never leaves the node.
"""

from __future__ import annotations

import re

import pytest
from aiohttp.test_utils import TestClient

from node import reports as node_reports
from protocol.errors import ValidationError
from storage import conversations as talk
from storage import reports as report_store
from tests.node.web.conftest import post_form, sign_up
from tests.node.web.test_annonces import publish

REPORT_LINK = re.compile(r'href="(/messages/\d+/signaler/\d+)"')
ONCE = re.compile(r'name="envoi" value="([^"]+)"')


@pytest.fixture
async def talking(web_client):
    """Marie posted; Paul answered; Marie replied. Their sessions and the conversation's path."""
    await sign_up(web_client, "marie", "Marie D.")
    paul = TestClient(web_client.server)
    await paul.start_server()
    await sign_up(paul, "paul", "Paul B.")
    ref = await publish(web_client, titre="Tonte de pelouse")
    path = f"/annonces/{ref}/repondre"
    sent = await post_form(paul, path, {"message": "Envoyez-moi de l'argent d'abord"}, page=path)
    conversation = sent.headers["Location"]
    await post_form(web_client, conversation, {"message": "Non merci"}, page=conversation)
    yield web_client, paul, conversation
    await paul.session.close()


async def messages_of(db, path: str) -> list[talk.Message]:
    return await db.read(talk.conversation_messages, int(path.rsplit("/", 1)[1]))


async def test_a_member_reports_the_other_s_message_and_the_moderators_see_its_text(talking, db):
    marie, paul, conversation = talking
    page = await (await marie.get(conversation)).text()
    links = REPORT_LINK.findall(page)
    paul_message, marie_message = await messages_of(db, conversation)
    assert links == [f"{conversation}/signaler/{paul_message.id}"]  # not on her own message
    form = await marie.get(links[0])
    text = await form.text()
    assert form.status == 200 and "Envoyez-moi de l&#39;argent d&#39;abord" in text
    once = ONCE.search(text).group(1)
    data = {"raison": "argent", "details": "Il demande de l'argent.", "envoi": once}
    sent = await post_form(marie, links[0], data, page=links[0])
    assert (sent.status, sent.headers["Location"]) == (303, links[0] + "?envoye=1")
    again = await post_form(marie, links[0], data, page=links[0])  # the same form, sent twice
    assert again.status == 303
    (report,) = await db.read(report_store.list_reports)
    assert (report.message_key, report.message_text) == (paul_message.key, paul_message.body)
    assert (report.reason, report.details, report.annonce_title) == (
        "argent", "Il demande de l'argent.", "Tonte de pelouse")
    summary = await node_reports.summary_of(marie.server.app, report.id)
    assert summary["message"]["text"] == paul_message.body
    with pytest.raises(ValidationError):
        await node_reports.forward(marie.server.app, report.id)  # stays with this node
    assert (await db.read(report_store.get_report, report.id)).delivery is None


async def test_one_s_own_message_or_another_conversation_s_is_not_reported(talking, db, web_client):
    marie, paul, conversation = talking
    paul_message, marie_message = await messages_of(db, conversation)
    own = f"{conversation}/signaler/{marie_message.id}"
    for client, path in ((marie, own), (paul, f"{conversation}/signaler/{paul_message.id}"),
                         (marie, f"{conversation}/signaler/999999"),
                         (marie, f"{conversation}/signaler/abc"),
                         (marie, f"{conversation}/signaler/{'9' * 40}"),
                         (marie, f"/messages/999999/signaler/{paul_message.id}")):  # fmt: skip
        assert (await client.get(path)).status == 404, path
        sent = await post_form(client, path, {"raison": "abus"}, page=conversation)
        assert sent.status == 404, path
    # A third member cannot report a message of a conversation that is not theirs.
    lucie = TestClient(web_client.server)
    await lucie.start_server()
    try:
        await sign_up(lucie, "lucie", "Lucie F.")
        path = f"{conversation}/signaler/{paul_message.id}"
        assert (await lucie.get(path)).status == 404
        assert (await post_form(lucie, path, {"raison": "abus"}, page="/")).status == 404
    finally:
        await lucie.session.close()
    assert await db.read(report_store.list_reports) == []


async def test_a_hostile_report_form_is_refused_and_stores_nothing(talking, db):
    marie, _paul, conversation = talking
    paul_message, _ = await messages_of(db, conversation)
    path = f"{conversation}/signaler/{paul_message.id}"
    for data in ({"raison": "pas-une-raison"}, {}, {"raison": "abus", "details": "x" * 5000}):
        sent = await post_form(marie, path, data, page=path)
        assert sent.status == 422, data
    sent = await marie.post(path, data={"raison": "abus"}, allow_redirects=False)
    assert sent.status == 403  # no CSRF token
    assert await db.read(report_store.list_reports) == []
