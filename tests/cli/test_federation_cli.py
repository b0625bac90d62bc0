"""`troc peers`, `troc annonces`, `troc sync` against live nodes (real `troc run` processes).

Two nodes run for the whole module, each in a short temporary directory (the
admin socket path must stay under 108 bytes). Commands run in-process through
CliRunner and reach the nodes through their admin sockets, as an operator's
would. Every failure must be one line and a non-zero exit.
"""

from __future__ import annotations

import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import cli
from protocol.identity import b64url_encode
from tests.ports import free_port

START_TIMEOUT_S = 20
TROC = [str(Path(sys.executable).with_name("troc"))]


def troc(data: Path, *args: str, input: str | None = None, env: dict | None = None):
    return CliRunner(env=env).invoke(cli, ["--data", str(data), *args], input=input)


def one_line_error(result) -> str:
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, result.output
    return lines[0]


class LiveNode:
    def __init__(self, root: Path, name: str, settings: dict | None = None) -> None:
        """``settings``: more lines of troc.toml, written after `troc init`."""
        self.data = root / name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        result = troc(self.data, "init", "--name", name, "--url", self.url,
                      "--listen", f"127.0.0.1:{self.port}")  # fmt: skip
        assert result.exit_code == 0, result.output
        if settings:
            with (self.data / "troc.toml").open("a", encoding="utf-8") as config:
                config.writelines(f"{key} = {json.dumps(value)}\n" for key, value in settings.items())
        self.log = (root / f"{name}.log").open("w")
        self.process = subprocess.Popen(
            [*TROC, "--data", str(self.data), "run"],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._healthy():
            assert self.process.poll() is None, f"{name} exited"
            assert time.monotonic() < deadline, f"{name} did not start"
            time.sleep(0.1)

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=1) as response:
                return response.status == 200 and (self.data / "admin.sock").exists()
        except OSError:
            return False

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.log.close()


@pytest.fixture(scope="module")
def nodes():
    root = Path(tempfile.mkdtemp(prefix="troc-cli-", dir="/tmp"))
    started = []
    try:
        for name in ("Maison du Pin", "Centre social"):
            started.append(LiveNode(root, name))
        yield started
    finally:
        for node in started:
            node.stop()
        shutil.rmtree(root, ignore_errors=True)


def peers_of(node) -> list[dict]:
    result = troc(node.data, "peers", "list", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def annonces_of(node) -> list[dict]:
    result = troc(node.data, "annonces", "list", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_answering_no_to_the_fingerprint_stores_nothing(nodes):
    a, b = nodes
    result = troc(a.data, "peers", "add", b.url, input="n\n")
    assert "fingerprint:" in result.output and "Centre social" in result.output
    assert "not confirmed" in one_line_error(result)
    assert b.url not in [p["url"] for p in peers_of(a)]


def test_a_url_that_is_not_a_troc_node_is_one_line(nodes, tmp_path):
    a, b = nodes
    assert "is not a Troc node" in one_line_error(troc(a.data, "peers", "add", b.url + "/healthz"))
    (tmp_path / ".well-known").mkdir()
    (tmp_path / ".well-known" / "troc").write_text("<html>Bonjour</html>")
    handler = lambda *args: http.server.SimpleHTTPRequestHandler(  # noqa: E731
        *args, directory=str(tmp_path)
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        assert "is not a Troc node" in one_line_error(troc(a.data, "peers", "add", url, "--yes"))
    finally:
        server.shutdown()
    assert peers_of(a) == [] or all(p["url"] != url for p in peers_of(a))


def test_an_unreachable_url_is_one_line(nodes):
    a, _ = nodes
    error = one_line_error(troc(a.data, "peers", "add", f"http://127.0.0.1:{free_port()}"))
    assert "cannot reach" in error and "connection refused" in error


def test_a_node_that_is_not_running_is_one_line(tmp_path):
    data = Path(tempfile.mkdtemp(prefix="troc-off-", dir="/tmp"))
    try:
        created = troc(data / "n", "init", "--name", "Éteint", "--url", "http://127.0.0.1:9")
        assert created.exit_code == 0
        assert "the node is not running" in one_line_error(troc(data / "n", "peers", "list"))
    finally:
        shutil.rmtree(data, ignore_errors=True)


def test_a_wrong_admin_token_is_refused(nodes):
    a, _ = nodes
    option_result = troc(a.data, "--token", "faux", "peers", "list")
    assert "refused the admin token" in one_line_error(option_result)
    env_result = troc(a.data, "peers", "list", env={"TROC_ADMIN_TOKEN": "faux"})
    assert "refused the admin token" in one_line_error(env_result)


def test_peering_posting_editing_withdrawing_and_syncing(nodes):
    a, b = nodes
    for x, y in ((a, b), (b, a)):
        added = troc(x.data, "peers", "add", y.url, "--yes")
        assert added.exit_code == 0, added.output
        assert "Peer added" in added.output
    listed = peers_of(a)
    assert len(listed) == 1
    assert {"node_id", "url", "name", "fingerprint", "state", "last_contact"} <= set(listed[0])
    assert (listed[0]["url"], listed[0]["name"]) == (b.url, "Centre social")

    posted = troc(a.data, "annonces", "post", "--kind", "offer", "--category", "service",
                  "--title", "Aide au jardin", "--text", "Je taille les haies.",
                  "--json")  # fmt: skip
    assert posted.exit_code == 0, posted.output
    revision = json.loads(posted.output)
    assert set(revision) == {"ref", "id", "rev"} and revision["rev"] == 1
    mine = [x for x in annonces_of(a) if x["ref"] == revision["ref"]]
    assert mine and mine[0]["id"] == revision["id"] and mine[0]["state"] == "open"
    _until(lambda: any(x["id"] == revision["id"] for x in annonces_of(b)))

    edited = troc(a.data, "annonces", "edit", revision["ref"], "--title", "Aide au jardin (haie)")
    assert edited.exit_code == 0, edited.output
    withdrawn = troc(a.data, "annonces", "withdraw", revision["ref"], "--json")
    assert json.loads(withdrawn.output)["rev"] == 3
    _until(lambda: [(x["rev"], x["state"]) for x in annonces_of(b)
                    if x["ref"] == revision["ref"]] == [(3, "withdrawn")])  # fmt: skip

    synced = troc(b.data, "sync")
    assert synced.exit_code == 0, synced.output
    assert "Maison du Pin: 1 rounds, received 0, sent 0" in synced.output


def test_edit_of_an_unknown_annonce_is_one_line(nodes):
    a, _ = nodes
    assert "no annonce" in one_line_error(troc(a.data, "annonces", "edit", "xyz", "--title", "Abc"))


def test_block_unblock_and_remove(nodes):
    a, b = nodes
    b_id = next(p["node_id"] for p in peers_of(a) if p["url"] == b.url)
    blocked = troc(a.data, "peers", "block", b_id, "--reason", "essai")
    assert blocked.exit_code == 0 and "blocked" in blocked.output
    assert "already blocked" in one_line_error(troc(a.data, "peers", "block", b_id))
    assert troc(a.data, "peers", "unblock", b_id).exit_code == 0
    assert troc(a.data, "peers", "remove", b_id).exit_code == 0
    assert "no such peer" in one_line_error(troc(a.data, "peers", "remove", b_id))
    assert "node id" in one_line_error(troc(a.data, "peers", "remove", "pas-un-id"))
    assert peers_of(a) == []


def _until(check, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not true in time"
        time.sleep(0.2)


def test_ids_and_refs_starting_with_a_dash_are_not_taken_for_options(nodes):
    """Base64url may start with "-": `troc peers remove -AbC…` must reach the node."""
    a, _ = nodes
    dash_id = b64url_encode(b"\xf8" + bytes(31))
    assert dash_id.startswith("-")
    assert "no such peer" in one_line_error(troc(a.data, "peers", "remove", dash_id))
    dash_ref = b64url_encode(b"\xf8" + bytes(47))
    edited = troc(a.data, "annonces", "edit", dash_ref, "--title", "Abc")
    assert "only this node's own annonces" in one_line_error(edited)
    assert "no annonce" in one_line_error(troc(a.data, "annonces", "withdraw", "-x"))
