"""`troc members delete` against a live node: one real `troc run` process.

A resident signs up and posts through the web form over HTTP; the operator
deletes the account; the resident's session, login and annonce are gone, the
handle is not given again, and deleting twice or an unknown name is one line.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.cli.nodeproc import free_port, init_node, invoke, one_error_line, run_node
from tests.cli.test_status_members_cli import CSRF, Browser

REF = re.compile(r"/annonces/([A-Za-z0-9_-]{64})")
ANNONCE = {"type": "offer", "categorie": "service", "titre": "Aide au jardin",
           "texte": "Je taille les haies le samedi.", "commune": "47001", "duree": "30",
           "action": "publier"}  # fmt: skip


@pytest.fixture(scope="module")
def node():
    root = Path(tempfile.mkdtemp(prefix="troc-d-", dir="/tmp"))
    data, port = root / "n", free_port()
    init_node(data, port)
    process = run_node(data, port)
    try:
        yield data, process.url
    finally:
        process.stop()
        shutil.rmtree(root, ignore_errors=True)


def troc(data: Path, *args: str, input: str | None = None):
    return invoke("--data", str(data), *args, input=input)


def handle_of(data: Path, login: str) -> str:
    listed = json.loads(troc(data, "members", "list", "--json").output)
    return next(m["handle"] for m in listed if m["login"] == login)


def test_the_operator_deletes_an_account_for_good(node):
    data, url = node
    browser = Browser(url)
    assert browser.sign_up("germaine") in (200, 303)
    assert browser.log_in("germaine") == 303
    page = browser._open("/annonces/nouvelle")[1]
    token = CSRF.search(page).group(1)
    status, _ = browser._open("/annonces/nouvelle", {"csrf": token, **ANNONCE})
    assert status == 303
    handle = handle_of(data, "germaine")
    refused = troc(data, "members", "delete", "germaine", input="n\n")
    assert refused.exit_code == 1 and handle_of(data, "germaine") == handle
    done = troc(data, "members", "delete", "germaine", "--yes")
    assert done.exit_code == 0, done.output
    assert f"{handle} deleted: 1 annonces withdrawn" in done.output
    assert "Backups keep the old data until they expire." in done.output
    assert browser.get("/mes-annonces") == 303  # logged out
    assert Browser(url).log_in("germaine") == 401
    assert "germaine" not in [m["login"] for m in
                              json.loads(troc(data, "members", "list", "--json").output)]
    twice = troc(data, "members", "delete", handle, "--yes")
    assert twice.exit_code == 1
    assert one_error_line(twice) == f"Error: the account {handle} was deleted already"


def test_deleting_an_unknown_member_is_one_line(node):
    data, _ = node
    result = troc(data, "members", "delete", "personne", "--yes")
    assert result.exit_code == 1
    assert one_error_line(result) == "Error: no member with the handle or login 'personne'"
