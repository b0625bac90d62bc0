"""While a resident writes a request, the preview shows the offers that fit it and why."""

from __future__ import annotations

from tests.node.web.conftest import log_out, post_form, sign_up
from tests.node.web.test_annonces import GOOD, publish

MOWING = {**GOOD, "titre": "Tonte de pelouse", "texte": "Je tonds votre gazon le samedi matin.",
          "commune": "47031"}  # fmt: skip
SEWING = {**GOOD, "titre": "Retouches de vêtements", "texte": "Je fais les ourlets.",
          "commune": "47001"}  # fmt: skip
REQUEST = {**GOOD, "type": "request", "titre": "Quelqu'un pour couper l'herbe ?",
           "texte": "Mon jardin est envahi, je ne peux plus me baisser.", "commune": "47001"}  # fmt: skip


async def _preview(client, values: dict) -> str:
    sent = await post_form(client, "/annonces/nouvelle", {**values, "action": "apercu"},
                           page="/annonces/nouvelle")  # fmt: skip
    assert sent.status == 303, await sent.text()
    page = await client.get(sent.headers["Location"])
    assert page.status == 200
    return await page.text()


async def test_a_request_being_written_shows_the_offers_that_fit_it(web_client):
    await sign_up(web_client, "karim", "Karim B.")
    await publish(web_client, **{k: v for k, v in MOWING.items()})
    await publish(web_client, **{k: v for k, v in SEWING.items()})
    await log_out(web_client)
    await sign_up(web_client, "odette", "Odette M.")
    text = await _preview(web_client, REQUEST)
    assert "Des voisins proposent peut-être déjà ce que vous cherchez" in text
    assert "Tonte de pelouse" in text
    assert "Retouches de vêtements" not in text
    assert "par Karim B." in text
    assert "Pourquoi :" in text and "même catégorie" in text


async def test_an_offer_being_written_shows_no_suggestions(web_client):
    await sign_up(web_client, "karim", "Karim B.")
    await publish(web_client, **MOWING)
    await log_out(web_client)
    await sign_up(web_client, "odette", "Odette M.")
    text = await _preview(web_client, {**REQUEST, "type": "offer"})
    assert "Des voisins proposent" not in text


async def test_a_request_with_nothing_in_common_shows_no_suggestions(web_client):
    await sign_up(web_client, "karim", "Karim B.")
    await publish(web_client, **SEWING)
    await log_out(web_client)
    await sign_up(web_client, "odette", "Odette M.")
    text = await _preview(web_client, REQUEST)
    assert "Des voisins proposent" not in text
