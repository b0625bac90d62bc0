"""The printed sheet and ``/ref``, through the real app on both backends.

The PDF is read back as a person would: its text (pypdf) holds each
annonce's short code, and each code leads through ``/ref`` to its annonce;
every character is at least 14 pt (pdfplumber); page 1 rendered to an image
(pypdfium2) has a QR code (zxing-cpp) that reads as the node's URL.
"""

from __future__ import annotations

import asyncio
import io
import re
from dataclasses import replace
from html import unescape

import pdfplumber
import pypdfium2
import pytest
import zxingcpp
from pypdf import PdfReader

from node.errors import ConfigError
from node.settings import check_settings
from node.sheet import (
    MAX_SHEET_ANNONCES,
    MAX_SHEETS_WAITING,
    SHEET_CACHE_S,
    sheet_maker_key,
)
from protocol.annonce import Category, State, annonce_ref
from protocol.identity import NodeKey
from protocol.short_code import short_code
from storage import annonces as annonce_store
from storage import moderation
from storage.schema import short_codes
from tests.factories import NOW, make_signed, next_revision
from tests.node.web.conftest import NODE_KEY

PEER = NodeKey.from_seed(b"\x31" * 32)
PUBLIC_URL = "https://troc.montanou.example"
CODE_ON_SHEET = re.compile(r"réf\. ([0-9A-Z]{5})")
PAGE1_PNG = "/tmp/sheet-page1.png"


@pytest.fixture
def settings(settings):
    return replace(settings, public_url=PUBLIC_URL, association_phone="05 53 00 00 00",
                   association_address="12 rue des Lilas | 47000 Agen",
                   association_hours="le mardi et le jeudi, de 14 h à 17 h")  # fmt: skip


async def _store(db, *signed, now=NOW):
    await db.write(annonce_store.store_revisions, list(signed), now=now)


def _text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def _pages(pdf: bytes) -> int:
    return len(PdfReader(io.BytesIO(pdf)).pages)


async def _sheet(client, query: str = "") -> bytes:
    response = await client.get("/feuille" + query)
    assert response.status == 200, await response.text()
    assert response.content_type == "application/pdf"
    return await response.read()


# --- /ref ----------------------------------------------------------------------------


async def test_the_ref_page_asks_for_the_number(web_client):
    response = await web_client.get("/ref")
    assert response.status == 200
    page = unescape(await response.text())
    assert "Vous avez un numéro d'annonce ?" in page and 'name="code"' in page


async def test_a_code_typed_loosely_finds_its_open_annonce(web_client, db):
    signed = make_signed(NODE_KEY, title="Cours de tricot")
    await _store(db, signed)
    a = signed.annonce
    code = short_code(a.origin, a.uid)
    typed = f" Réf. {code[:2].lower()} {code[2:]} ".replace("0", "o").replace("1", "l")
    response = await web_client.get("/ref", params={"code": typed})
    assert response.status == 200
    page = unescape(await response.text())
    assert f'href="/annonces/{annonce_ref(a.origin, a.uid)}"' in page
    assert "Cours de tricot" in page and "Vous pouvez y répondre." in page


async def test_the_annonce_page_shows_its_code(web_client, db):
    signed = make_signed(NODE_KEY)
    await _store(db, signed)
    a = signed.annonce
    page = unescape(await (await web_client.get(f"/annonces/{annonce_ref(a.origin, a.uid)}")).text())
    assert f"réf. {short_code(a.origin, a.uid)}" in page


@pytest.mark.parametrize(("state", "words"), [
    (State.FULFILLED, "Cette annonce est pourvue"),
    (State.WITHDRAWN, "Cette annonce a été retirée par son auteur"),
])  # fmt: skip
async def test_an_annonce_no_longer_open_is_said_so_without_a_link(web_client, db, state, words):
    first = make_signed(PEER, title="Vélo d'enfant")
    await _store(db, first, next_revision(PEER, first, state=state))
    a = first.annonce
    response = await web_client.get("/ref", params={"code": short_code(a.origin, a.uid)})
    assert response.status == 200
    page = unescape(await response.text())
    assert words in page and "Vélo d" in page
    assert f"/annonces/{annonce_ref(a.origin, a.uid)}" not in page


async def test_a_tombstone_without_title_is_named_in_words(web_client, db):
    first = make_signed(PEER, title="Vélo d'enfant")
    await _store(db, first, next_revision(PEER, first, state=State.WITHDRAWN, title="", text=""))
    a = first.annonce
    page = unescape(await (await web_client.get(
        "/ref", params={"code": short_code(a.origin, a.uid)})).text())  # fmt: skip
    assert "Une annonce retirée" in page and "Cette annonce a été retirée par son auteur" in page
    assert re.search(r'<h3 class="card-title"[^>]*></h3>', page) is None


async def test_an_expired_annonce_not_yet_purged_is_said_expired(web_client, db, clock):
    signed = make_signed(PEER, expires=NOW + 86400)
    await _store(db, signed)
    clock.now = NOW + 2 * 86400
    a = signed.annonce
    page = unescape(await (await web_client.get("/ref", params={"code": short_code(a.origin, a.uid)})).text())
    assert "Cette annonce a expiré" in page


async def test_an_old_code_of_a_purged_annonce_and_a_hidden_one_name_nothing(web_client, db):
    purged = make_signed(PEER, created=NOW - 40 * 86400, updated=NOW - 40 * 86400,
                         expires=NOW - 86400)  # fmt: skip
    hidden = make_signed(PEER)
    await _store(db, purged, hidden, now=NOW - 40 * 86400)
    await db.write(annonce_store.purge_expired, NOW)
    await db.write(moderation.hide_annonce, PEER.node_id, hidden.annonce.uid, reason="x", now=NOW)
    for signed in (purged, hidden):
        code = short_code(PEER.node_id, signed.annonce.uid)
        response = await web_client.get("/ref", params={"code": code})
        assert response.status == 404
        assert f"Aucune annonce n'a la réf. {code}" in unescape(await response.text())


async def test_a_code_shared_by_two_annonces_lists_both(web_client, db):
    one, two = make_signed(NODE_KEY, title="Premier"), make_signed(PEER, title="Second")
    await _store(db, one, two)
    code = short_code(NODE_KEY.node_id, one.annonce.uid)
    await db.write(lambda conn: conn.execute(
        short_codes.update().where(short_codes.c.uid == two.annonce.uid).values(code=code)))
    page = unescape(await (await web_client.get("/ref", params={"code": code})).text())
    assert "Premier" in page and "Second" in page and "Les 2 annonces de la réf." in page


@pytest.mark.parametrize(("typed", "words"), [
    ("", "Tapez la réf. de l'annonce"),
    ("K" * 5_000, "C'est trop long pour une réf."),
    ("K7P3\x00", "Une réf. n'a que des chiffres et des lettres"),
    ("K7P3Ж", "Une réf. n'a que des chiffres et des lettres"),
    ("<script>", "Une réf. n'a que des chiffres et des lettres"),
    ("K7P", "Une réf. a 5 chiffres ou lettres"),
])  # fmt: skip
async def test_garbage_codes_are_answered_in_words(web_client, typed, words):
    response = await web_client.get("/ref", params={"code": typed})
    assert response.status == 400
    page = unescape(await response.text())
    assert words in page
    assert "<script>" not in await response.text() and 'aria-invalid="true"' in page


# --- /feuille --------------------------------------------------------------------------


async def test_every_code_on_the_sheet_leads_to_its_annonce(web_client, db):
    titles = ["Cours de tricot", "Tonte de pelouse", "Prêt d'une perceuse", "Balade au bord du canal"]
    signed = [make_signed(PEER if i % 2 else NODE_KEY, title=t, created=NOW - i, updated=NOW - i)
              for i, t in enumerate(titles)]  # fmt: skip
    await _store(db, *signed)
    text = _text(await _sheet(web_client))
    codes = CODE_ON_SHEET.findall(text)
    assert len(codes) == len(titles)
    for code, s in zip(codes, signed):  # newest first, as on the sheet
        a = s.annonce
        assert code == short_code(a.origin, a.uid)
        page = unescape(await (await web_client.get("/ref", params={"code": code})).text())
        assert f'href="/annonces/{annonce_ref(a.origin, a.uid)}"' in page and a.title in page
    assert "05 53 00 00 00" in text and "12 rue des Lilas" in text and "14 h à 17 h" in text


async def test_the_sheet_is_in_large_print_with_a_qr_code_to_the_node(web_client, db):
    await _store(db, *[make_signed(NODE_KEY, title=f"Annonce numéro {i}", created=NOW - i,
                                   updated=NOW - i) for i in range(3)])  # fmt: skip
    pdf = await _sheet(web_client)
    with pdfplumber.open(io.BytesIO(pdf)) as document:
        sizes = {round(c["size"], 1) for page in document.pages for c in page.chars}
        fonts = {c["fontname"] for page in document.pages for c in page.chars}
        width, height = document.pages[0].width, document.pages[0].height
    assert min(sizes) >= 14, sorted(sizes)
    assert all("DejaVu" in f for f in fonts), fonts
    assert (round(width), round(height)) == (595, 842)  # A4 in points
    page = pypdfium2.PdfDocument(pdf)[0].render(scale=2).to_pil()
    page.save(PAGE1_PNG)
    codes = zxingcpp.read_barcodes(page)
    assert [c.text for c in codes if c.format == zxingcpp.BarcodeFormat.QRCode] == [PUBLIC_URL]


async def test_the_sheet_without_annonces_says_how_to_post_through_the_association(web_client):
    text = _text(await _sheet(web_client))
    assert "Pas d'annonce en cours" in text and "L'association publie votre annonce" in text
    assert CODE_ON_SHEET.findall(text) == []


async def test_the_worst_annonces_fit_two_pages(web_client, db):
    long = [make_signed(NODE_KEY, title=("Déménagement d'un piano droit au deuxième étage " * 3)[:120],
                        text="Bonjour, " + "il faudrait quelqu'un de costaud samedi matin, " * 40,
                        created=NOW - i, updated=NOW - i) for i in range(MAX_SHEET_ANNONCES + 5)]  # fmt: skip
    await _store(db, *long)
    pdf = await _sheet(web_client)
    assert _pages(pdf) <= 2
    assert len(CODE_ON_SHEET.findall(_text(pdf))) == MAX_SHEET_ANNONCES


async def test_with_ten_thousand_annonces_the_newest_only(web_client, db):
    batch = [make_signed(PEER, created=NOW - 10_000 + i, updated=NOW - 10_000 + i,
                         category=Category.COUP_DE_MAIN, title=f"Coup de main {i}")
             for i in range(10_000)]  # fmt: skip
    await _store(db, *batch)
    text = _text(await _sheet(web_client))
    newest = [short_code(s.annonce.origin, s.annonce.uid) for s in batch[::-1][:MAX_SHEET_ANNONCES]]
    assert CODE_ON_SHEET.findall(text) == newest


async def test_the_communes_asked_choose_the_annonces(web_client, db):
    agen = make_signed(NODE_KEY, title="À Agen", commune="47001")
    boe = make_signed(NODE_KEY, title="À Boé", commune="47031")
    await _store(db, agen, boe)
    text = _text(await _sheet(web_client, "?commune=47031"))
    assert "À Boé" in text and "À Agen" not in text, text
    assert "2026 — Boé Pour" in " ".join(text.split())  # the communes under the title
    both = _text(await _sheet(web_client, "?commune=47031&commune=47001&commune=47031"))
    assert "À Boé" in both and "À Agen" in both
    everyone = _text(await _sheet(web_client, "?commune="))  # « all communes » sends ""
    assert "toute l'agglomération" in everyone


async def test_the_setting_chooses_the_communes_when_none_is_asked(make_web_client, db):
    client = await make_web_client(sheet_communes="47031")
    await _store(db, make_signed(NODE_KEY, title="À Agen"), make_signed(NODE_KEY, title="À Boé",
                                                                        commune="47031"))  # fmt: skip
    text = _text(await _sheet(client))
    assert "À Boé" in text and "À Agen" not in text


@pytest.mark.parametrize("query", [
    "?commune=99999", "?commune=47001&commune=nope", "?commune=" + "4" * 5000,
    "?commune=%00", "?" + "&".join(["commune=47001"] * 500),
])  # fmt: skip
async def test_bad_communes_get_a_clear_page(web_client, query):
    response = await web_client.get("/feuille" + query)
    assert response.status == 400
    assert response.content_type == "text/html"
    assert "Feuille impossible à préparer" in unescape(await response.text())


async def test_a_thousand_communes_are_refused_before_the_node_reads_them(web_client):
    response = await web_client.get("/feuille?" + "&".join(["commune=47001"] * 1000))
    assert response.status == 400  # the request line is over aiohttp's 8190 bytes


async def test_a_sheet_is_kept_for_a_while_then_made_again(web_client, db, clock):
    first = await _sheet(web_client)
    await _store(db, make_signed(NODE_KEY, title="Toute nouvelle annonce"))
    assert await _sheet(web_client) == first
    clock.now = NOW + SHEET_CACHE_S
    assert "Toute nouvelle annonce" in _text(await _sheet(web_client))


async def test_a_flood_of_sheet_requests_is_told_to_try_again(web_client):
    """While sheets wait for their turn, past MAX_SHEETS_WAITING another is refused (429)."""
    maker = web_client.server.app[sheet_maker_key]
    communes = ["47001", "47031", "47091", "47201", "47032"]
    async with maker._turns:  # the one turn is taken: the sheets asked wait
        waiting = [asyncio.create_task(web_client.get("/feuille", params={"commune": c}))
                   for c in communes[:MAX_SHEETS_WAITING]]  # fmt: skip
        for _ in range(500):
            if maker.waiting == MAX_SHEETS_WAITING:
                break
            await asyncio.sleep(0.01)
        assert maker.waiting == MAX_SHEETS_WAITING
        again = await web_client.get("/feuille", params={"commune": communes[-1]})
        assert again.status == 429 and again.headers["Retry-After"]
        same = asyncio.create_task(web_client.get("/feuille", params={"commune": communes[0]}))
        await asyncio.sleep(0.05)
        assert maker.waiting == MAX_SHEETS_WAITING  # the same sheet is waited for, not queued
    answers = await asyncio.gather(*waiting, same)
    assert [a.status for a in answers] == [200] * (MAX_SHEETS_WAITING + 1)
    assert await answers[0].read() == await answers[-1].read()


async def test_the_about_page_links_to_the_sheet_and_ref(web_client):
    page = unescape(await (await web_client.get("/a-propos")).text())
    assert 'action="/feuille"' in page and 'href="/ref"' in page


async def test_the_node_refuses_to_start_with_an_unknown_sheet_commune(make_web_client):
    with pytest.raises(ConfigError, match="99999 is not a commune"):
        await make_web_client(sheet_communes="47001, 99999")


@pytest.mark.parametrize("value", ["agen", "47001, 4700", "47001;47031", "4700\x001"])
def test_a_sheet_communes_setting_that_is_not_insee_codes_is_refused(settings, value):
    with pytest.raises(ConfigError, match="sheet_communes"):
        check_settings(replace(settings, sheet_communes=value))


async def test_what_an_author_typed_is_printed_as_text_and_fetches_nothing(web_client, db):
    title = '<img src="http://127.0.0.1:9/x.png"> <b>Vélo</b>'
    text = '<style>body{font-size:2pt}</style><script>alert(1)</script> &amp; fin'
    await _store(db, make_signed(PEER, title=title, text=text))
    pdf = await _sheet(web_client)
    printed = " ".join(_text(pdf).split())
    assert '<img src="http://127.0.0.1:9/x.png"> <b>Vélo</b>' in printed
    assert "<style>body{font-size:2pt}</style>" in printed and "&amp; fin" in printed
    with pdfplumber.open(io.BytesIO(pdf)) as document:
        assert min(round(c["size"], 1) for page in document.pages for c in page.chars) >= 14
