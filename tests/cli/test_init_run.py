"""`troc init`, `troc run`, `troc key`: success, and failures as one clear line."""

from __future__ import annotations

import os
import socket

import pytest
from click.testing import CliRunner

from cli.main import cli
from protocol.identity import NodeKey


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def init(data, *extra: str):
    return invoke("--data", str(data), "init", "--name", "Maison du Pin",
                  "--url", "http://127.0.0.1:8080", *extra)  # fmt: skip


def test_init_creates_a_node_with_private_files(tmp_path):
    data = tmp_path / "node"
    result = init(data)
    assert result.exit_code == 0, result.output
    for name in ("node.key", "admin.token"):
        assert os.stat(data / name).st_mode & 0o077 == 0
    key = NodeKey.from_pem((data / "node.key").read_bytes())
    assert key.node_id_text in result.output
    shown = invoke("--data", str(data), "key")
    assert shown.exit_code == 0
    assert key.fingerprint in shown.output


def test_init_refuses_to_overwrite_an_existing_key(tmp_path):
    data = tmp_path / "node"
    assert init(data).exit_code == 0
    before = (data / "node.key").read_bytes()
    again = init(data)
    assert again.exit_code != 0
    assert "exists already" in again.output
    assert (data / "node.key").read_bytes() == before


def test_init_with_an_unreachable_database_leaves_nothing_behind(tmp_path):
    data = tmp_path / "node"
    result = init(data, "--db", "postgresql+asyncpg://nobody@127.0.0.1:1/none")
    assert result.exit_code == 1
    assert result.output.startswith("Error: cannot open the database")
    assert len(result.output.strip().splitlines()) == 1
    assert not data.exists()


@pytest.mark.parametrize("url", ["mysql://x/y", "not a url", "sqlite:///plain.db"])
def test_init_with_an_unsupported_database_url_is_refused(tmp_path, url):
    result = init(tmp_path / "node", "--db", url)
    assert result.exit_code == 1
    assert "database URL" in result.output
    assert "Traceback" not in result.output


def test_run_without_a_node_says_to_init(tmp_path):
    result = invoke("--data", str(tmp_path / "missing"), "run")
    assert result.exit_code == 1
    assert "run `troc --data" in result.output


def test_run_with_invalid_toml_is_one_line(tmp_path):
    data = tmp_path / "node"
    init(data)
    (data / "troc.toml").write_text("name = [unclosed")
    result = invoke("--data", str(data), "run")
    assert result.exit_code == 1
    assert "is not valid TOML" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_run_with_an_unreadable_key_is_one_line(tmp_path):
    data = tmp_path / "node"
    init(data)
    (data / "node.key").write_bytes(b"garbage")
    result = invoke("--data", str(data), "run")
    assert result.exit_code == 1
    assert "is not a usable Ed25519 key" in result.output


def test_run_with_a_key_readable_by_others_is_refused(tmp_path):
    data = tmp_path / "node"
    init(data)
    os.chmod(data / "node.key", 0o644)
    result = invoke("--data", str(data), "run")
    assert result.exit_code == 1
    assert "readable by others" in result.output


def test_run_on_a_port_in_use_is_one_line(tmp_path):
    data = tmp_path / "node"
    init(data)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = invoke("--data", str(data), "run", "--listen", f"127.0.0.1:{port}")
    assert result.exit_code == 1
    assert f"port {port} on 127.0.0.1 is already in use" in result.output


def test_run_refuses_a_database_of_another_node(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    init(first)
    init(second)
    (second / "troc.db").write_bytes((first / "troc.db").read_bytes())
    result = invoke("--data", str(second), "run")
    assert result.exit_code == 1
    assert "this database belongs to node" in result.output


def test_version(tmp_path):
    result = invoke("--version")
    assert result.exit_code == 0 and result.output.startswith("troc, version ")
