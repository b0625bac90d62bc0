"""`troc annonces show / hide / unhide` against a live node (a real `troc run` process).

Every failure must be one line and a non-zero exit.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from protocol.annonce import annonce_ref, parse_annonce_ref
from protocol.identity import b64url_encode
from tests.cli.test_federation_cli import LiveNode, one_line_error, troc


@pytest.fixture(scope="module")
def node():
    root = Path(tempfile.mkdtemp(prefix="troc-mod-", dir="/tmp"))
    live = None
    try:
        live = LiveNode(root, "Maison du Pin")
        yield live
    finally:
        if live is not None:
            live.stop()
        shutil.rmtree(root, ignore_errors=True)


def _post(node, title: str) -> str:
    posted = troc(node.data, "annonces", "post", "--kind", "offer", "--category", "objet",
                  "--title", title, "--text", "À venir chercher.", "--json")  # fmt: skip
    assert posted.exit_code == 0, posted.output
    return json.loads(posted.output)["ref"]


def _show(node, ref: str) -> dict:
    shown = troc(node.data, "annonces", "show", ref, "--json")
    assert shown.exit_code == 0, shown.output
    return json.loads(shown.output)


def _page_status(node, ref: str) -> int:
    try:
        with urllib.request.urlopen(f"{node.url}/annonces/{ref}", timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_show_prints_the_annonce_for_people_and_for_scripts(node):
    ref = _post(node, "Vélo à donner")
    shown = troc(node.data, "annonces", "show", ref)
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    assert f"ref:          {ref}" in lines
    assert "origin:       this node" in lines and "hidden:       no" in lines
    assert "title:        Vélo à donner" in lines and "open reports: 0" in lines
    described = _show(node, ref)
    assert (described["ref"], described["own"], described["hidden"]) == (ref, True, False)
    assert (described["state"], described["kind"], described["category"]) == (
        "open", "offer", "objet")  # fmt: skip


def test_hide_and_unhide_take_the_annonce_off_the_site_and_back(node):
    ref = _post(node, "Perceuse à prêter")
    assert _page_status(node, ref) == 200
    hidden = troc(node.data, "annonces", "hide", ref, "--reason", "annonce en double")
    assert hidden.exit_code == 0, hidden.output
    assert hidden.output == f"Hidden: {ref} (Perceuse à prêter)\n"
    assert _page_status(node, ref) == 404
    listed = [line for line in troc(node.data, "annonces", "list").output.splitlines() if ref in line]
    assert len(listed) == 1 and "open, hidden" in listed[0]
    described = _show(node, ref)
    assert (described["hidden"], described["hidden_reason"]) == (True, "annonce en double")
    text = troc(node.data, "annonces", "show", ref).output
    assert "hidden:       yes, since " in text and text.count(": annonce en double") == 1
    shown = troc(node.data, "annonces", "unhide", ref, "--json")
    assert shown.exit_code == 0, shown.output
    assert (json.loads(shown.output)["hidden"], json.loads(shown.output)["ref"]) == (False, ref)
    assert _page_status(node, ref) == 200
    again = troc(node.data, "annonces", "unhide", ref)
    assert again.output == f"Shown again: {ref} (Perceuse à prêter)\n"


@pytest.mark.parametrize("command", ["show", "hide", "unhide"])
def test_an_unknown_or_malformed_ref_is_one_line(node, command):
    origin, _ = parse_annonce_ref(_post(node, "Annonce témoin"))
    unknown = annonce_ref(origin, os.urandom(16))
    assert "holds no annonce" in one_line_error(troc(node.data, "annonces", command, unknown))
    for malformed in ("xyz", "a/b?c=d#e", " "):
        error = one_line_error(troc(node.data, "annonces", command, malformed))
        assert "not an annonce ref" in error, error
    dash_ref = b64url_encode(b"\xf8" + bytes(47))
    assert dash_ref.startswith("-")
    assert "holds no annonce" in one_line_error(troc(node.data, "annonces", command, dash_ref))


@pytest.mark.parametrize("command", ["show", "hide", "unhide"])
def test_a_wrong_token_is_refused_and_changes_nothing(node, command):
    ref = _post(node, "Annonce gardée")
    refused = troc(node.data, "--token", "faux", "annonces", command, ref)
    assert "refused the admin token" in one_line_error(refused)
    assert _show(node, ref)["hidden"] is False


@pytest.mark.parametrize("command", ["show", "hide", "unhide"])
def test_a_node_that_is_not_running_is_one_line(command):
    data = Path(tempfile.mkdtemp(prefix="troc-off-", dir="/tmp"))
    try:
        created = troc(data / "n", "init", "--name", "Éteint", "--url", "http://127.0.0.1:9")
        assert created.exit_code == 0, created.output
        ref = b64url_encode(bytes(48))
        error = one_line_error(troc(data / "n", "annonces", command, ref))
        assert "the node is not running" in error
    finally:
        shutil.rmtree(data, ignore_errors=True)


@pytest.mark.parametrize("args", [
    ["annonces", "show", ""], ["annonces", "hide", ""], ["peers", "remove", ""],
    ["reports", "resolve", ""], ["members", "approve", ""], ["annonces", "show", "A" * 100_000],
])  # fmt: skip
def test_an_empty_or_huge_argument_is_a_usage_error(node, args):
    result = troc(node.data, *args)
    assert result.exit_code == 2, result.output
    assert "an argument is empty" in result.output or "an argument is too long" in result.output
    assert "Traceback" not in result.output
