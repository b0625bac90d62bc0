"""`troc sheet` against a live node (a real `troc run` process): the PDF written, bad input refused."""

from __future__ import annotations

import io
import json
import re
import shutil
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from pypdf import PdfReader

from tests.cli.test_federation_cli import LiveNode, one_line_error, troc

CODE_ON_SHEET = re.compile(r"réf\. ([0-9A-Z]{5})")


@pytest.fixture(scope="module")
def node():
    root = Path(tempfile.mkdtemp(prefix="troc-sheet-", dir="/tmp"))
    started = None
    try:
        started = LiveNode(root, "Feuille", settings={
            "association_phone": "05 53 00 00 00", "sheet_communes": "47001, 47031",
        })  # fmt: skip
        for title, commune in (("Cours de couture", "47001"), ("Prêt d'un escabeau", "47031")):
            posted = troc(started.data, "annonces", "post", "--kind", "offer", "--category",
                          "service", "--title", title, "--text", "Le samedi matin, avec plaisir.",
                          "--commune", commune, "--json")  # fmt: skip
            assert posted.exit_code == 0, posted.output
        yield started
    finally:
        if started is not None:
            started.stop()
        shutil.rmtree(root, ignore_errors=True)


def _text(path: Path) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(path.read_bytes())).pages)


def _ref_page(node, code: str) -> str:
    url = f"{node.url}/ref?{urllib.parse.urlencode({'code': code})}"
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode("utf-8")


def test_the_sheet_of_the_setting_holds_both_annonces_whose_codes_lead_to_them(node, tmp_path):
    out = tmp_path / "feuille.pdf"
    result = troc(node.data, "sheet", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert f"Sheet of 2 annonces (2 communes) written to {out}" in result.output
    text = _text(out)
    codes = CODE_ON_SHEET.findall(text)
    assert len(codes) == 2 and "05 53 00 00 00" in text
    listed = json.loads(troc(node.data, "annonces", "list", "--json").output)
    refs = {a["ref"] for a in listed}
    for code in codes:
        page = _ref_page(node, code.lower())
        linked = re.findall(r'href="/annonces/([^"]+)"', page)
        assert len(set(linked) & refs) == 1


def test_the_communes_asked_choose_the_annonces(node, tmp_path):
    out = tmp_path / "boe.pdf"
    result = troc(node.data, "sheet", "--commune", "47031", "--out", str(out))
    assert result.exit_code == 0, result.output
    text = _text(out)
    assert "escabeau" in text and "couture" not in text


@pytest.mark.parametrize("commune", ["99999", "agen", "47001\x00", "4" * 300])
def test_a_bad_commune_is_one_line_and_writes_nothing(node, tmp_path, commune):
    out = tmp_path / "feuille.pdf"
    result = troc(node.data, "sheet", "--commune", "47001", "--commune", commune, "--out", str(out))
    assert "not a commune of the area" in one_line_error(result)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_too_many_communes_for_a_request_is_a_usage_error(node, tmp_path):
    many = [arg for _ in range(200) for arg in ("--commune", "47001")]
    result = troc(node.data, "sheet", *many, "--out", str(tmp_path / "f.pdf"))
    assert result.exit_code == 2 and "too long" in result.output


def test_an_unwritable_place_is_one_line(node, unwritable_dir):
    result = troc(node.data, "sheet", "--out", str(unwritable_dir / "feuille.pdf"))
    assert "cannot write" in one_line_error(result)


def test_without_a_running_node_it_says_so(tmp_path):
    data = tmp_path / "stopped"
    made = troc(data, "init", "--name", "Arrêtée", "--url", "http://127.0.0.1:9")
    assert made.exit_code == 0, made.output
    result = troc(data, "sheet", "--out", str(tmp_path / "f.pdf"))
    assert "the node is not running" in one_line_error(result)
