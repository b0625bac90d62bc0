"""Public meeting places: the node's file, an association's own, and the conversation's page."""

from __future__ import annotations

import html
import json

import pytest
from aiohttp.test_utils import TestClient

from node.meeting_places import (
    BASE_MEETING_PLACES,
    MAX_PLACES_PER_COMMUNE,
    MEETING_PLACES_FILE,
    MeetingPlacesError,
    load_meeting_places,
)
from node.places import load_communes
from tests.node.web.conftest import post_form, sign_up
from tests.node.web.test_annonces import publish

COMMUNES = load_communes()


def test_every_commune_has_its_mairie_and_no_street_address():
    places = load_meeting_places(COMMUNES)
    assert set(places) == set(COMMUNES.by_code) and len(places) == 44
    for code, names in places.items():
        assert names[0].startswith("la mairie "), code
        assert not any(ch.isdigit() for name in names for ch in name), names  # no street numbers
    assert places["47001"][0] == "la mairie d'Agen"
    assert places["47201"] == ("la mairie du Passage",)
    assert places["47031"] == ("la mairie de Boé",)


def test_an_association_adds_its_places_after_the_node_s(tmp_path):
    extra = tmp_path / MEETING_PLACES_FILE
    extra.write_text(json.dumps({"47031": ["le centre social de Boé", "la mairie de Boé"]}),
                     encoding="utf-8")  # fmt: skip
    places = load_meeting_places(COMMUNES, extra)
    assert places["47031"] == ("la mairie de Boé", "le centre social de Boé")
    assert places["47001"] == load_meeting_places(COMMUNES)["47001"]


@pytest.mark.parametrize("text, said", [
    ('{\n "47031": ["la salle"],\n "47031x": ["ailleurs"]\n}',
     "line 3: '47031x' is not the INSEE code"),
    ('{\n "47031": [\n  "la salle",\n ]\n}', "line 4, column 2: not valid JSON"),
    ('["la salle"]', "line 1: must be an object"),
    ('{\n\n "47031": "la salle"\n}', "line 3: commune 47031: must be a list"),
    ('{\n "47031": [""]\n}', "line 2: commune 47031: each place is a text"),
    ('{\n "47031": ["a\\nb"]\n}', "line 2: commune 47031: each place is a text"),
    ('{\n "47031": ["' + "x" * 121 + '"]\n}', "line 2: commune 47031: each place is a text"),
    ('{"47031": [' + ", ".join(f'"lieu {n}"' for n in range(MAX_PLACES_PER_COMMUNE)) + "]}",
     f"more than {MAX_PLACES_PER_COMMUNE} places"),
])  # fmt: skip
def test_a_malformed_file_is_refused_with_the_line_at_fault(tmp_path, text, said):
    extra = tmp_path / MEETING_PLACES_FILE
    extra.write_text(text, encoding="utf-8")
    with pytest.raises(MeetingPlacesError) as refused:
        load_meeting_places(COMMUNES, extra)
    assert str(refused.value).startswith(f"{extra}: ") and said in str(refused.value)


def test_a_file_that_is_not_utf8_or_too_large_is_refused(tmp_path):
    extra = tmp_path / MEETING_PLACES_FILE
    extra.write_bytes(b'{"47031": ["\xe9"]}')
    with pytest.raises(MeetingPlacesError, match="not UTF-8"):
        load_meeting_places(COMMUNES, extra)
    extra.write_bytes(b" " * (BASE_MEETING_PLACES.stat().st_size + 300_000))
    with pytest.raises(MeetingPlacesError, match="larger than"):
        load_meeting_places(COMMUNES, extra)


async def test_a_malformed_file_stops_the_node(make_web_client, settings):
    (settings.data_dir / MEETING_PLACES_FILE).write_text("{oups", encoding="utf-8")
    with pytest.raises(MeetingPlacesError, match="line 1"):
        await make_web_client()


async def test_the_conversation_offers_the_places_of_the_annonce_s_commune(make_web_client,
                                                                           settings):  # fmt: skip
    (settings.data_dir / MEETING_PLACES_FILE).write_text(
        json.dumps({"47001": ["la <b>salle</b> des fêtes"]}), encoding="utf-8")
    marie = await make_web_client()
    await sign_up(marie)
    ref = await publish(marie)  # in Agen
    paul = TestClient(marie.server)
    await paul.start_server()
    try:
        await sign_up(paul, "paul", "Paul B.")
        path = f"/annonces/{ref}/repondre"
        conversation = (await post_form(paul, path, {"message": "Bonjour"}, page=path)
                        ).headers["Location"]  # fmt: skip
        raw = await (await paul.get(conversation)).text()
    finally:
        await paul.session.close()
    page = html.unescape(raw)
    assert "Pour vous rencontrer, choisissez un lieu public" in page
    assert "la mairie d'Agen" in page and "la médiathèque Lacépède d'Agen" in page
    assert "la <b>salle</b> des fêtes" in page and "<b>salle" not in raw  # escaped
