"""Helpers for the maintenance, demo and operating-guide tests: nodes made with
`troc init`, real `troc run` processes, seeded annonces, throw-away PostgreSQL
databases (their fixtures are in conftest.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import asyncpg
from click.testing import CliRunner

from cli.main import cli
from node.keyfile import load_node_key
from protocol.envelope import SignedAnnonce
from storage.annonces import store_revisions
from storage.db import open_database
from tests.conftest import POSTGRES_ADMIN_URL, run_in_own_loop
from tests.factories import make_signed
from tests.ports import free_port

TROC = str(Path(sys.executable).with_name("troc"))
START_TIMEOUT_S = 20.0


def invoke(*args: str, input: str | None = None, env: dict | None = None):
    """Run `troc ARGS` in this process; an unexpected exception fails the test.

    In a thread of its own: the commands call asyncio.run, which refuses to
    run where a loop already runs (a session fixture may have left one).
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(CliRunner().invoke, cli, list(args), input=input, env=env,
                           catch_exceptions=False).result()  # fmt: skip


def one_error_line(result) -> str:
    """The single `Error: …` line of a failed command (asserts there is one)."""
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: "), result.output
    assert "Traceback" not in result.output
    return lines[0]


def init_node(data: Path, port: int | None = None, *extra: str) -> int:
    """`troc init` a node listening on a free port; return the port."""
    port = port or free_port()
    result = invoke("--data", str(data), "init", "--name", "Maison du Pin",
                    "--url", f"http://127.0.0.1:{port}", "--listen", f"127.0.0.1:{port}",
                    *extra)  # fmt: skip
    assert result.exit_code == 0, result.output
    return port


def seed_annonces(data: Path, count: int = 3, *, url: str | None = None) -> list[SignedAnnonce]:
    """Store ``count`` live annonces of the node in ``data`` (running or not)."""
    key = load_node_key(data / "node.key")
    now = int(time.time())
    signed = [make_signed(key, now=now, title=f"Annonce numéro {i}") for i in range(count)]

    async def _store():
        db = open_database(url or f"sqlite+aiosqlite:///{data / 'troc.db'}")
        try:
            await db.write(store_revisions, signed, now=now)
        finally:
            await db.close()

    run_in_own_loop(_store)
    return signed


def http_get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, OSError):
        return 0


class NodeProcess:
    """A `troc … run` process (or any command line that serves a node)."""

    def __init__(self, argv: list[str], port: int, log: Path, env: dict | None = None) -> None:
        self.port = port
        self.log = log
        with open(log, "ab") as out:
            self.process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})}, start_new_session=True,
            )  # fmt: skip
        self.wait_healthy()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while http_get(self.url + "/healthz") != 200:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"node did not start:\n{self.log.read_text()}")
            time.sleep(0.1)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def run_node(data: Path, port: int) -> NodeProcess:
    return NodeProcess([TROC, "--data", str(data), "run", "--listen", f"127.0.0.1:{port}"],
                       port, data.parent / f"{data.name}.log")  # fmt: skip


# --- PostgreSQL ---------------------------------------------------------------


async def admin_execute(statement: str) -> None:
    conn = await asyncpg.connect(
        POSTGRES_ADMIN_URL.replace("postgresql+asyncpg://", "postgresql://"), timeout=5
    )
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


class ThrowAwayDatabases:
    """Creates PostgreSQL databases for one test and drops them all after it."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def create(self) -> str:
        name = f"troc_ops_{uuid.uuid4().hex[:12]}"
        run_in_own_loop(admin_execute, f'CREATE DATABASE "{name}"')
        self.names.append(name)
        return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"

    def drop_all(self) -> None:
        for name in self.names:
            run_in_own_loop(admin_execute, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
