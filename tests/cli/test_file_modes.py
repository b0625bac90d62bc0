"""The data directory and everything in it are owner-only (real `troc` processes).

`troc init` into an existing 0755 directory left it 0755, with troc.db 0644
and troc.toml (which may hold a database password) following the umask. Now
the directory is 0700 and every file 0600, SQLite's -wal and -shm included,
whatever the caller's umask; `troc run` refuses a data directory others can
enter, or a key, token or configuration they can read, in one line naming the
fix, and warns about any other file.
"""

from __future__ import annotations

import os
import stat
import subprocess
import time
from pathlib import Path

import pytest

from tests.cli.nodeproc import (
    START_TIMEOUT_S,
    TROC,
    free_port,
    http_get,
    init_node,
    invoke,
    run_node,
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def troc(*args: str) -> subprocess.CompletedProcess:
    """`troc ARGS` in a process of its own, started with the usual umask of 022."""
    return subprocess.run([TROC, *args], capture_output=True, text=True, timeout=60,
                          umask=0o022)  # fmt: skip


def test_init_into_an_existing_open_directory_makes_it_and_its_files_owner_only(short_tmp):
    data = short_tmp / "a"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)
    port = free_port()
    created = troc("--data", str(data), "init", "--name", "Maison du Pin",
                   "--url", f"http://127.0.0.1:{port}", "--listen", f"127.0.0.1:{port}")  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert mode(data) == 0o700
    files = {p.name: mode(p) for p in data.iterdir()}
    assert {"node.key", "admin.token", "troc.toml", "troc.db"} <= set(files)
    assert set(files.values()) == {0o600}, files


def test_files_the_running_node_creates_are_owner_only(short_tmp):
    data = short_tmp / "a"
    port = init_node(data)
    node = subprocess.Popen([TROC, "--data", str(data), "run"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT, umask=0o022)  # fmt: skip
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while http_get(f"http://127.0.0.1:{port}/healthz") != 200:
            assert node.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        created = {p.name: mode(p) for p in data.iterdir()}
    finally:
        node.terminate()
        node.wait(15)
    assert {"troc.db-wal", "troc.db-shm", "admin.sock"} <= set(created), created
    assert all(m & 0o077 == 0 for m in created.values()), created


def test_a_failed_init_gives_an_existing_directory_its_mode_back(short_tmp):
    data = short_tmp / "a"
    data.mkdir()
    os.chmod(data, 0o755)
    result = invoke("--data", str(data), "init", "--name", "Maison du Pin", "--url",
                    "http://127.0.0.1:8080", "--db", "postgresql+asyncpg://nobody@127.0.0.1:1/x")  # fmt: skip
    assert result.exit_code == 1
    assert mode(data) == 0o755 and list(data.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "chmod", "fix"),
    [
        ("", 0o755, "is open to other users; run `chmod 700 {path}`"),
        ("troc.toml", 0o644, "is readable by others; run `chmod 600 {path}`"),
        ("admin.token", 0o640, "is readable by others; run `chmod 600 {path}`"),
        ("node.key", 0o604, "is readable by others; run `chmod 600 {path}`"),
    ],
    ids=["directory", "config", "token", "key"],
)
def test_run_refuses_a_data_dir_others_can_read_in_one_line(short_tmp, name, chmod, fix):
    data = short_tmp / "a"
    init_node(data)
    path = data / name if name else data
    os.chmod(path, chmod)
    result = troc("--data", str(data), "run")
    assert result.returncode == 1, result.stderr
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"Error: {path} {fix.format(path=path)}"), lines


def test_run_warns_once_about_another_file_readable_by_others(short_tmp):
    data = short_tmp / "a"
    port = init_node(data)
    os.chmod(data / "troc.db", 0o644)
    node = run_node(data, port)
    node.stop()
    lines = [line for line in node.log.read_text().splitlines() if "readable by others" in line]
    assert len(lines) == 1 and "WARNING" in lines[0], lines
    assert f"readable by others in {data}: troc.db; run `chmod go-rwx {data / 'troc.db'}`" in lines[0]
