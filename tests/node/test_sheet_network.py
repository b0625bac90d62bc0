"""A code printed on one node's sheet is quoted at another node's desk: real nodes on loopback."""

from __future__ import annotations

import io
import re

import aiohttp
from pypdf import PdfReader

from protocol.annonce import annonce_ref
from tests.node.harness import Clock, eventually, make_nodes, peer

CODE_ON_SHEET = re.compile(r"réf\. ([0-9A-Z]{5})")


async def test_a_code_on_a_sheet_of_a_leads_to_the_annonce_at_b(db, spare_db, tmp_path):
    a, b = await make_nodes(db, spare_db, tmp_path, ["A", "B"], Clock())
    await peer(a, b)
    for node in (a, b):
        await node.start()
    try:
        signed = await a.post("Prêt d'une tondeuse")
        await eventually(lambda: b.holds(signed.id))
        async with aiohttp.ClientSession() as session:
            async with session.get(a.url + "/feuille?commune=47001") as response:
                assert response.status == 200
                pdf = await response.read()
            text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages)
            (code,) = CODE_ON_SHEET.findall(text)
            async with session.get(b.url + "/ref", params={"code": code.lower()}) as response:
                assert response.status == 200
                page = await response.text()
        ref = annonce_ref(signed.annonce.origin, signed.annonce.uid)
        assert f'href="/annonces/{ref}"' in page and "tondeuse" in page
    finally:
        for node in (a, b):
            await node.stop()
