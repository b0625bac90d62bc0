"""`troc nodes` and the key commands against a live node (a real `troc run` process),
and `troc init` / `troc new-key` about the recovery key.

Every failure must be one line and a non-zero exit, and store nothing.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest

from node.keyfile import load_recovery_id
from protocol.identity import NodeKey
from tests.cli.nodeproc import invoke, one_error_line
from tests.cli.test_federation_cli import LiveNode, troc


@pytest.fixture(scope="module")
def node():
    root = Path(tempfile.mkdtemp(prefix="troc-nodes-", dir="/tmp"))
    live = None
    try:
        live = LiveNode(root, "Maison du Pin")
        yield live
    finally:
        if live is not None:
            live.stop()
        shutil.rmtree(root, ignore_errors=True)


def _listed(node) -> list[dict]:
    listed = troc(node.data, "nodes", "list", "--json")
    assert listed.exit_code == 0, listed.output
    return json.loads(listed.output)


def test_the_list_names_this_node_with_its_recovery_key(node):
    (own,) = _listed(node)
    assert own["own"] and own["name"] == "Maison du Pin" and own["recovery"]
    shown = troc(node.data, "nodes", "list")
    assert shown.exit_code == 0
    assert "Maison du Pin" in shown.output and "this node" in shown.output
    assert own["fingerprint"] in shown.output


def test_refusing_and_accepting_a_node_again(node):
    other = NodeKey.from_seed(b"\x31" * 32).node_id_text
    refused = troc(node.data, "nodes", "refuse", other, "--reason", "messages abusifs")
    assert refused.exit_code == 0, refused.output
    assert "refused" in refused.output
    accepted = troc(node.data, "nodes", "accept", other)
    assert accepted.exit_code == 0, accepted.output


@pytest.mark.parametrize("node_id", ["pas-un-identifiant", "A" * 200, "../../v1/key/rotate"])
def test_a_malformed_node_id_is_one_error_line(node, node_id):
    refused = troc(node.data, "nodes", "refuse", node_id)
    assert refused.exit_code == 1
    assert "must be a node id" in one_error_line(refused)


def test_key_rotate_asks_first_and_changes_nothing_when_told_no(node):
    before = troc(node.data, "key").output
    answered = troc(node.data, "key", "rotate", input="n\n")
    assert answered.exit_code == 1 and "Aborted" in answered.output
    assert troc(node.data, "key").output == before


def test_init_writes_a_recovery_key_and_says_to_take_it_away(short_tmp):
    data = short_tmp / "data"
    made = invoke("--data", str(data), "init", "--name", "Maison du Pin",
                  "--url", "https://troc.example.org")  # fmt: skip
    assert made.exit_code == 0, made.output
    recovery = NodeKey.from_pem((data / "recovery.key").read_bytes())
    assert load_recovery_id(data / "recovery.pub") == recovery.node_id
    assert (data / "recovery.key").stat().st_mode & 0o077 == 0
    assert recovery.fingerprint in made.output
    assert f"rm {data / 'recovery.key'}" in made.output


@pytest.fixture
def stopped(short_tmp) -> Path:
    data = short_tmp / "data"
    made = invoke("--data", str(data), "init", "--name", "Maison du Pin",
                  "--url", "https://troc.example.org")  # fmt: skip
    assert made.exit_code == 0, made.output
    return data


def test_new_key_refuses_another_nodes_recovery_key_and_changes_nothing(stopped, short_tmp):
    foreign = short_tmp / "other.key"
    foreign.write_bytes(NodeKey.from_seed(b"\x32" * 32).to_pem())
    before = (stopped / "node.key").read_bytes()
    refused = invoke("--data", str(stopped), "new-key", "--recovery-key", str(foreign), "--yes")
    assert refused.exit_code == 1
    assert "not the node's recovery key" in one_error_line(refused)
    assert (stopped / "node.key").read_bytes() == before


@pytest.mark.parametrize("content", [b"", b"pas une cle\n", b"\x00" * 64])
def test_new_key_refuses_a_file_that_is_no_recovery_key(stopped, short_tmp, content):
    bad = short_tmp / "bad.key"
    bad.write_bytes(content)
    refused = invoke("--data", str(stopped), "new-key", "--recovery-key", str(bad), "--yes")
    assert refused.exit_code == 1
    assert "recovery key" in one_error_line(refused)


def test_new_key_since_goes_with_a_recovery_key_and_a_date(stopped):
    alone = invoke("--data", str(stopped), "new-key", "--since", "2026-11-30", "--yes")
    assert alone.exit_code == 2 and "--since goes with --recovery-key" in alone.output
    bad = invoke("--data", str(stopped), "new-key", "--recovery-key",
                 str(stopped / "recovery.key"), "--since", "hier", "--yes")  # fmt: skip
    assert bad.exit_code == 2 and "2026-11-30" in bad.output


def test_new_key_with_the_recovery_key_keeps_it_valid(stopped):
    recovery_id = load_recovery_id(stopped / "recovery.pub")
    old = NodeKey.from_pem((stopped / "node.key").read_bytes())
    done = invoke("--data", str(stopped), "new-key", "--recovery-key",
                  str(stopped / "recovery.key"), "--since", "2026-11-30T09:00", "--yes")  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "peers follow it" in done.output
    assert NodeKey.from_pem((stopped / "node.key").read_bytes()).node_id != old.node_id
    assert load_recovery_id(stopped / "recovery.pub") == recovery_id  # the same for life


def test_new_key_without_one_makes_a_new_identity_its_own_recovery_key(stopped):
    recovery_id = load_recovery_id(stopped / "recovery.pub")
    done = invoke("--data", str(stopped), "new-key", "--yes")
    assert done.exit_code == 0, done.output
    assert "A recovery key was written" in done.output
    assert load_recovery_id(stopped / "recovery.pub") not in (None, recovery_id)
    assert list(stopped.glob("recovery.pub.replaced-*"))
