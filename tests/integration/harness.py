"""Real Troc nodes on loopback, for integration tests and benchmarks.

A ``Cluster`` owns everything it starts: one temporary directory (short, so
that ``DATA/admin.sock`` stays under the 107-byte limit of a Unix socket
path), ``troc run`` processes, and TCP proxies. ``Cluster.close`` stops all
of it, and an ``atexit`` hook plus ``PR_SET_PDEATHSIG`` make sure no node
outlives the Python process that started it, even when a test fails or the
run is interrupted.

Where peers reach a node
------------------------
Federation requests are signed over ``@authority`` (RFC 9421) and the
receiver checks it against its own public URL, so a peer must call a node at
the URL the node advertises. A proxied node is therefore initialised with
``--url http://127.0.0.1:PROXY --listen 127.0.0.1:REAL``: everything its
peers send it goes through its *inbound* proxy. To cut one directed link
rather than a whole node, the proxy learns who is calling from the
``keyid`` of the request signature (the caller's node id) and refuses the
senders it is told to refuse. Unsigned requests (node documents, health,
the CLI) are never refused unless the proxy is cut altogether.

The proxies count bytes in both directions and per sender, which gives the
bytes each node *received*: the requests sent to it (inbound on its proxy)
plus the responses to its own requests (outbound on the proxies of the
nodes it called).

Everything here is synchronous from the caller's side: subprocesses and a
background thread running one asyncio loop for all proxies.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import http.client
import itertools
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.ports import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]


def _troc_executable() -> list[str]:
    """The ``troc`` of the venv running us, else ``python -m cli.main``."""
    beside = Path(sys.executable).with_name("troc")
    if beside.exists():
        return [str(beside)]
    return [sys.executable, "-m", "cli.main"]


TROC = _troc_executable()

# Settings that make a test network quick; callers may override any of them.
FAST_ENV = {
    "TROC_SYNC_INTERVAL_S": "2",
    "TROC_PURGE_INTERVAL_S": "5",
    "TROC_NEW_MEMBER_DAYS": "0",  # residents post more than a new account's daily limit
    "TROC_LOG_LEVEL": os.environ.get("TROC_TEST_LOG_LEVEL", "INFO"),
}

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
CLI_TIMEOUT_S = 30.0


# --------------------------------------------------------------------------
# Small helpers


class HarnessError(AssertionError):
    """A node, a command or a wait did not do what the test needed."""


def wait_until(
    predicate: Callable[[], Any],
    timeout: float,
    *,
    interval: float = 0.1,
    message: str | Callable[[], str] = "condition",
) -> Any:
    """Poll ``predicate`` until it returns something truthy, and return that.

    Exceptions from the predicate count as "not yet" (a node may be
    restarting); on timeout the last value or exception is in the error.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = predicate()
        except Exception as exc:  # noqa: BLE001 - reported if it lasts
            value, last = None, exc
        else:
            if value:
                return value
            last = value
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise HarnessError(f"timed out after {timeout:.1f}s waiting for {text}; last: {last!r}")
        time.sleep(interval)


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """GET ``url`` without proxies from the environment; (status, body)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


# --------------------------------------------------------------------------
# Processes that never outlive us

_LIVE_GROUPS: set[int] = set()


def _parent_death_prefix() -> list[str]:
    """`setpriv --pdeathsig KILL`: Linux kills the node if we die first.

    (A ``preexec_fn`` would do the same but is unsafe with threads, and the
    proxies run in one.) Without setpriv, the atexit hook and the fixtures'
    finalizers remain.
    """
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []


_DIE_WITH_PARENT = _parent_death_prefix()


def _kill_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


@atexit.register
def _kill_leftovers() -> None:
    for pgid in list(_LIVE_GROUPS):
        _kill_group(pgid, signal.SIGKILL)
    _LIVE_GROUPS.clear()


@dataclass
class CliResult:
    args: Sequence[str]
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        try:
            return json.loads(self.stdout)
        except json.JSONDecodeError as exc:
            raise HarnessError(
                f"`troc {' '.join(self.args)}` did not print JSON: {exc}\n"
                f"stdout: {self.stdout!r}\nstderr: {self.stderr!r}"
            ) from None


# --------------------------------------------------------------------------
# The admin API on the node's Unix socket (what the `troc` command talks to)


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("troc", timeout=timeout)
        self._socket_path = str(path)

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class AdminError(HarnessError):
    def __init__(self, status: int, body: Any, what: str) -> None:
        super().__init__(f"{what} answered {status}: {body!r}")
        self.status, self.body = status, body


def admin_call(socket_path: Path, token: str, method: str, path: str,
               body: Any = None, timeout: float = CLI_TIMEOUT_S) -> Any:  # fmt: skip
    """One JSON request to a node's admin API; its decoded answer."""
    conn = _UnixHTTPConnection(socket_path, timeout)
    try:
        payload = None if body is None else json.dumps(body).encode("utf-8")
        headers = {"Authorization": f"Bearer {token}"}
        if payload is not None:
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=payload, headers=headers)
        response = conn.getresponse()
        status, raw = response.status, response.read()
    finally:
        conn.close()
    data = json.loads(raw) if raw else None
    if status >= 400:
        raise AdminError(status, data, f"admin {method} {path}")
    return data


# --------------------------------------------------------------------------
# A node


@dataclass
class Node:
    """One node: its data directory, its `troc run` process, its ports."""

    name: str
    data_dir: Path
    listen_port: int
    public_url: str
    env: dict[str, str]
    proxy: TcpProxy | None = None
    node_id: str = ""
    fingerprint: str = ""
    process: subprocess.Popen | None = None
    starts: int = 0

    # --- files

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.name}.log"

    @property
    def listen(self) -> str:
        return f"127.0.0.1:{self.listen_port}"

    @property
    def direct_url(self) -> str:
        """Where the node really listens (bypasses its proxy)."""
        return f"http://{self.listen}"

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    # --- the troc command

    def command(self, *args: str) -> list[str]:
        return [*_DIE_WITH_PARENT, *TROC, "--data", str(self.data_dir), *args]

    def spawn_cli(self, *args: str) -> subprocess.Popen:
        """Start `troc --data DIR ARGS` without waiting (see ``finish_cli``)."""
        proc = subprocess.Popen(
            self.command(*args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL, env=self._process_env(), cwd=REPO_ROOT,
            text=True, start_new_session=True,
        )  # fmt: skip
        _LIVE_GROUPS.add(proc.pid)
        return proc

    @staticmethod
    def finish_cli(proc: subprocess.Popen, args: Sequence[str], timeout: float) -> CliResult:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
            raise HarnessError(
                f"`troc {' '.join(args)}` took more than {timeout}s\nstderr: {stderr}"
            ) from None
        finally:
            _LIVE_GROUPS.discard(proc.pid)
        return CliResult(list(args), proc.returncode, stdout, stderr)

    def cli(self, *args: str, timeout: float = CLI_TIMEOUT_S, check: bool = True) -> CliResult:
        """Run `troc --data DIR ARGS`; by default a non-zero exit is an error."""
        result = self.finish_cli(self.spawn_cli(*args), args, timeout)
        if check and result.returncode != 0:
            raise HarnessError(
                f"[{self.name}] `troc {' '.join(args)}` exited {result.returncode}\n"
                f"stdout: {result.stdout}\nstderr: {result.stderr}\n"
                f"--- {self.name} log tail ---\n{self.log_tail(30)}"
            )
        return result

    def cli_json(self, *args: str, timeout: float = CLI_TIMEOUT_S) -> Any:
        return self.cli(*args, timeout=timeout).json()

    def _process_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TROC_")}
        env.update(self.env)
        # Never let a proxy setting of the machine stand between two nodes.
        for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy",
                     "ALL_PROXY"):  # fmt: skip
            env.pop(name, None)
        env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        return env

    # --- lifecycle

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start `troc run` in its own process group, logging to ``log_path``."""
        if self.running:
            raise HarnessError(f"{self.name} is running already")
        self.starts += 1
        with self.log_path.open("a", encoding="utf-8") as log:
            log.write(
                f"\n===== harness: start #{self.starts} of {self.name} at {time.time():.3f}\n"
            )
            log.flush()
            self.process = subprocess.Popen(
                self.command("run"), stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env=self._process_env(), cwd=REPO_ROOT,
                start_new_session=True,
            )  # fmt: skip
        _LIVE_GROUPS.add(self.process.pid)

    def is_healthy(self) -> bool:
        if not self.running:
            raise HarnessError(
                f"{self.name} exited with {self.process.returncode if self.process else None}"
                f"\n--- {self.name} log tail ---\n{self.log_tail(30)}"
            )
        try:
            status, body = http_get(self.direct_url + "/healthz", timeout=1.0)
        except OSError:
            return False
        return status == 200 and json.loads(body) == {"status": "ok"} and self._admin_answers()

    def _admin_answers(self) -> bool:
        """The admin socket takes connections (with several workers, the one that serves
        it may still be starting when another answers on the port)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(1.0)
            try:
                probe.connect(str(self.admin_socket))
            except OSError:
                return False
        return True

    def wait_healthy(self, timeout: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while not self.is_healthy():  # raises at once if the process died
            if time.monotonic() > deadline:
                raise HarnessError(
                    f"{self.name} not healthy after {timeout}s\n"
                    f"--- {self.name} log tail ---\n{self.log_tail(30)}"
                )
            time.sleep(0.05)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM the process group, then SIGKILL it after ``timeout``."""
        return self._end(signal.SIGTERM, timeout)

    def kill(self) -> int | None:
        """SIGKILL, as a power cut would: no cleanup runs in the node."""
        return self._end(signal.SIGKILL, STOP_TIMEOUT_S)

    def _end(self, sig: int, timeout: float) -> int | None:
        proc = self.process
        if proc is None:
            return None
        if proc.poll() is None:
            _kill_group(proc.pid, sig)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._note(f"did not stop within {timeout}s of signal {sig}: SIGKILL")
                _kill_group(proc.pid, signal.SIGKILL)
                proc.wait(timeout=STOP_TIMEOUT_S)
        # Whatever the main process left in its group goes too.
        _kill_group(proc.pid, signal.SIGKILL)
        _LIVE_GROUPS.discard(proc.pid)
        return proc.returncode

    def restart(self, *, kill: bool = False, timeout: float = START_TIMEOUT_S) -> None:
        """Stop (or kill) the node and start it again on the same data directory."""
        self.kill() if kill else self.stop()
        self.start()
        self.wait_healthy(timeout)

    def _note(self, text: str) -> None:
        with self.log_path.open("a", encoding="utf-8") as log:
            log.write(f"===== harness: {self.name} {text}\n")

    # --- HTTP

    def get(self, path: str, *, via_proxy: bool = False, timeout: float = 5.0) -> tuple[int, Any]:
        """GET a path; JSON bodies are decoded."""
        base = self.public_url if via_proxy else self.direct_url
        status, body = http_get(base + path, timeout=timeout)
        try:
            return status, json.loads(body)
        except ValueError:
            return status, body

    def node_document(self) -> dict[str, Any]:
        status, doc = self.get("/.well-known/troc")
        if status != 200:
            raise HarnessError(f"{self.name}: /.well-known/troc answered {status}: {doc!r}")
        return json.loads(doc["document"]) if isinstance(doc.get("document"), str) else doc

    # --- annonces (the CLI interface of the federation issue)

    def post(self, title: str, *, kind: str = "offer", category: str = "service",
             text: str | None = None, commune: str | None = None,
             days: int | None = None) -> dict[str, Any]:  # fmt: skip
        """`troc annonces post ... --json`: {"ref", "id", "rev"} once acknowledged."""
        args = ["annonces", "post", "--kind", kind, "--category", category,
                "--title", title, "--text", text or f"Texte de l'annonce {title}."]  # fmt: skip
        if commune:
            args += ["--commune", commune]
        if days:
            args += ["--days", str(days)]
        return self.cli_json(*args, "--json")

    def edit(self, ref: str, title: str) -> CliResult:
        return self.cli("annonces", "edit", ref, "--title", title)

    def withdraw(self, ref: str) -> CliResult:
        return self.cli("annonces", "withdraw", ref)

    def annonces(self) -> list[dict[str, Any]]:
        """Every current revision the node holds, live and withdrawn (admin API).

        The same answer as `troc annonces list --json`, without starting a
        process: polling five nodes through the CLI costs seconds.
        """
        return self.admin("GET", "/v1/annonces?limit=100000")

    def peers(self) -> list[dict[str, Any]]:
        return self.admin("GET", "/v1/peers")

    def add_peer_admin(self, other: Node) -> dict[str, Any]:
        """What `troc peers add URL --yes` does, through the admin API directly."""
        return self.admin("POST", "/v1/peers", {"url": other.public_url, "node_id": other.node_id})

    def status(self) -> dict[str, Any]:
        return self.admin("GET", "/v1/status")

    # --- the admin API, directly

    @property
    def admin_socket(self) -> Path:
        return self.data_dir / "admin.sock"

    @property
    def admin_token(self) -> str:
        return (self.data_dir / "admin.token").read_text(encoding="ascii").strip()

    def admin(self, method: str, path: str, body: Any = None,
              timeout: float = CLI_TIMEOUT_S) -> Any:  # fmt: skip
        return admin_call(self.admin_socket, self.admin_token, method, path, body, timeout)

    # --- the database file, read only while the node is down

    @property
    def db_path(self) -> Path:
        """The node's SQLite file (the default ``database_url``)."""
        return self.data_dir / "troc.db"

    def integrity_check(self) -> str:
        """``PRAGMA integrity_check`` of the node's SQLite file, read-only: "ok" or the problems.

        Call it only while the process is stopped or killed: the WAL left by a
        SIGKILL is read as the next start would read it, and nothing is written.
        """
        if self.running:
            raise HarnessError(f"{self.name} is running: stop or kill it before checking its file")
        with contextlib.closing(sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True)) as conn:
            rows = conn.execute("PRAGMA integrity_check").fetchall()
        return "\n".join(str(row[0]) for row in rows)

    def post_admin(self, title: str, *, kind: str = "offer", category: str = "service",
                   text: str | None = None, commune: str = "47001") -> dict[str, Any]:  # fmt: skip
        """What `troc annonces post --json` prints, through the admin API directly."""
        return self.admin("POST", "/v1/annonces", {
            "kind": kind, "category": category, "title": title, "commune": commune,
            "text": text or f"Texte de l'annonce {title}.",
        })  # fmt: skip


# --------------------------------------------------------------------------
# TCP proxies


class ProxyLoop:
    """One background thread running the asyncio loop of every proxy."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="troc-proxies", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def call(self, coroutine, timeout: float = 10.0):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        if self.loop.is_closed():
            return

        async def _cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            self.call(_cancel_all(), timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self.loop.close()


_KEYID = re.compile(rb'keyid="([A-Za-z0-9_-]{43})"')
_SNIFF_KEEP = 200  # bytes kept between chunks so a keyid split in two is found
_LINGER_RESET = struct.pack("ii", 1, 0)  # linger on, 0 s: close() sends RST


@dataclass(eq=False)
class _Connection:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter | None = None
    sender: str | None = None
    tail: bytes = b""

    def abort(self) -> None:
        """Reset both ends (RST), as a cut cable or a dead host would look."""
        for writer in (self.client, self.upstream):
            if writer is not None:
                with contextlib.suppress(Exception):
                    sock = writer.get_extra_info("socket")
                    if sock is not None:
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
                    writer.transport.abort()

    def close(self) -> None:
        for writer in (self.client, self.upstream):
            if writer is not None:
                with contextlib.suppress(Exception):
                    writer.close()


@dataclass(eq=False)
class TcpProxy:
    """A TCP relay in front of one node that a test can cut and heal.

    ``cut()`` refuses every connection and resets the open ones;
    ``refuse_senders(ids)`` does so only for requests signed by those node
    ids. Bytes are counted per direction: ``bytes_in`` (client to node) and
    ``bytes_out`` (node to client), in total and per sender id.
    """

    loop: ProxyLoop
    target_port: int
    name: str = "proxy"
    port: int = 0
    cut_all: bool = False
    refused: set[str] = field(default_factory=set)
    bytes_in: int = 0
    bytes_out: int = 0
    in_by_sender: dict[str | None, int] = field(default_factory=lambda: defaultdict(int))
    out_by_sender: dict[str | None, int] = field(default_factory=lambda: defaultdict(int))
    connections_refused: int = 0
    _server: asyncio.AbstractServer | None = None
    _open: set[_Connection] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, port: int = 0) -> TcpProxy:
        self.loop.call(self._start(port))
        return self

    async def _start(self, port: int) -> None:
        self._server = await asyncio.start_server(
            self._serve, "127.0.0.1", port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    def close(self) -> None:
        if self._server is not None:
            self.loop.call(self._close())

    async def _close(self) -> None:
        self._server.close()
        for conn in list(self._open):
            conn.abort()
        self._open.clear()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._server.wait_closed(), 2)

    # --- control, from the test's thread

    def cut(self) -> None:
        """Refuse every connection from now on and reset those open."""
        self.loop.call(self._set(cut_all=True, refused=self.refused))

    def refuse_senders(self, node_ids: Iterable[str]) -> None:
        """Refuse requests signed by these node ids (and reset their connections)."""
        self.loop.call(self._set(cut_all=self.cut_all, refused=set(node_ids)))

    def heal(self) -> None:
        self.loop.call(self._set(cut_all=False, refused=set()))

    async def _set(self, *, cut_all: bool, refused: set[str]) -> None:
        self.cut_all, self.refused = cut_all, set(refused)
        for conn in list(self._open):
            if self._is_refused(conn.sender):
                self._drop(conn)

    def reset_counters(self) -> None:
        async def _reset() -> None:
            self.bytes_in = self.bytes_out = 0
            self.in_by_sender.clear()
            self.out_by_sender.clear()

        self.loop.call(_reset())

    # --- the relay itself

    def _is_refused(self, sender: str | None) -> bool:
        return self.cut_all or (sender is not None and sender in self.refused)

    def _drop(self, conn: _Connection) -> None:
        self.connections_refused += 1
        conn.abort()
        self._open.discard(conn)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = _Connection(client=writer)
        if self.cut_all:
            self._drop(conn)
            return
        try:
            up_reader, conn.upstream = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            self._drop(conn)  # the node is down: the caller sees a reset
            return
        self._open.add(conn)
        try:
            await asyncio.gather(
                self._pump(reader, conn.upstream, conn, inbound=True),
                self._pump(up_reader, writer, conn, inbound=False),
            )
        except (ConnectionError, OSError):
            conn.abort()  # one side reset: reset the other
        finally:
            conn.close()
            self._open.discard(conn)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter,
                    conn: _Connection, *, inbound: bool) -> None:  # fmt: skip
        while chunk := await source.read(65536):
            if inbound:
                self._sniff(conn, chunk)
                if self._is_refused(conn.sender):
                    self._drop(conn)
                    return
                self.bytes_in += len(chunk)
                self.in_by_sender[conn.sender] += len(chunk)
            else:
                self.bytes_out += len(chunk)
                self.out_by_sender[conn.sender] += len(chunk)
            sink.write(chunk)
            await sink.drain()
        # A half-close travels on, so the other side can finish its answer.
        if sink.can_write_eof() and not sink.is_closing():
            sink.write_eof()

    @staticmethod
    def _sniff(conn: _Connection, chunk: bytes) -> None:
        if conn.sender is not None:
            return
        window = conn.tail + chunk
        match = _KEYID.search(window)
        if match:
            conn.sender = match.group(1).decode("ascii")
            conn.tail = b""
        else:
            conn.tail = window[-_SNIFF_KEEP:]


# --------------------------------------------------------------------------
# A cluster of nodes


class Cluster:
    """Nodes, proxies and a temporary directory, all stopped by ``close``."""

    def __init__(self, *, env: dict[str, str | None] | None = None, keep_dir: bool = False) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="troc-it-", dir="/tmp"))
        # A value of None removes a setting of FAST_ENV: the node's default applies.
        merged = {**FAST_ENV, **(env or {})}
        self.env = {name: value for name, value in merged.items() if value is not None}
        self.keep_dir = keep_dir
        self.nodes: list[Node] = []
        self._proxy_loop: ProxyLoop | None = None
        self.proxies: list[TcpProxy] = []
        self.closed = False

    def __enter__(self) -> Cluster:  # noqa: PYI034 - a final class
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # --- creation

    @property
    def proxy_loop(self) -> ProxyLoop:
        if self._proxy_loop is None:
            self._proxy_loop = ProxyLoop()
        return self._proxy_loop

    def proxy(self, target_port: int, name: str = "proxy") -> TcpProxy:
        proxy = TcpProxy(self.proxy_loop, target_port, name).start()
        self.proxies.append(proxy)
        return proxy

    def add_nodes(self, count: int, *, proxied: bool = True, start: bool = True,
                  env: dict[str, str] | None = None) -> list[Node]:  # fmt: skip
        """Create ``count`` nodes (``troc init`` run in parallel) and start them.

        A proxied node advertises its proxy's URL and listens on another port.
        """
        created: list[Node] = []
        for _ in range(count):
            index = len(self.nodes)
            name = f"n{index}"
            proxy = self.proxy(0, name) if proxied else None
            listen_port = self._unused_port()
            if proxy is not None:
                proxy.target_port = listen_port
            node = Node(
                name=name, data_dir=self.base / name, listen_port=listen_port,
                public_url=proxy.url if proxy else f"http://127.0.0.1:{listen_port}",
                env={**self.env, **(env or {})}, proxy=proxy,
            )  # fmt: skip
            self.nodes.append(node)
            created.append(node)
        self._init_all(created)
        if start:
            self.start(created)
        return created

    def _unused_port(self) -> int:
        """A free port that no node or proxy of this cluster uses yet.

        (``free_port`` releases its port at once, so the kernel may hand it out
        again, e.g. to the next proxy: check against what is taken.)
        """
        taken = {n.listen_port for n in self.nodes} | {p.port for p in self.proxies}
        while (port := free_port()) in taken:
            pass
        return port

    def _init_all(self, nodes: Sequence[Node]) -> None:
        running = []
        for node in nodes:
            args = ("init", "--name", f"Maison {node.name}", "--url", node.public_url,
                    "--listen", node.listen)  # fmt: skip
            running.append((node, args, node.spawn_cli(*args)))
        for node, args, proc in running:
            result = Node.finish_cli(proc, args, CLI_TIMEOUT_S)
            if result.returncode != 0:
                raise HarnessError(f"`troc init` of {node.name} failed: {result.stderr}")
            node.node_id = _field(result.stdout, "id")
            node.fingerprint = _field(result.stdout, "fingerprint")

    def start(self, nodes: Sequence[Node] | None = None) -> None:
        nodes = self.nodes if nodes is None else nodes
        for node in nodes:
            node.start()
        for node in nodes:
            node.wait_healthy()

    # --- topology

    def peer(self, a: Node, b: Node) -> None:
        """Make a and b peers of each other (through their public URLs)."""
        self.connect([(a, b)])

    def connect(self, edges: Iterable[tuple[Node, Node]], *, parallel: int = 6,
                via_admin: bool = False) -> None:  # fmt: skip
        """`troc peers add URL --yes` on both ends of every edge, a few at a time.

        ``via_admin`` sends the same requests to the admin API directly, one
        after the other: quicker for large networks (no process starts).
        """
        commands = [(x, y) for a, b in edges for x, y in ((a, b), (b, a))]
        if via_admin:
            for node, other in commands:
                node.add_peer_admin(other)
            return
        for start in range(0, len(commands), parallel):
            running = []
            for node, other in commands[start : start + parallel]:
                args = ("peers", "add", other.public_url, "--yes")
                running.append((node, args, node.spawn_cli(*args)))
            for node, args, proc in running:
                result = Node.finish_cli(proc, args, CLI_TIMEOUT_S)
                if result.returncode != 0:
                    raise HarnessError(
                        f"[{node.name}] `troc {' '.join(args)}` failed "
                        f"({result.returncode}): {result.stdout} {result.stderr}"
                    )

    @staticmethod
    def line_edges(nodes: Sequence[Node]) -> list[tuple[Node, Node]]:
        return list(itertools.pairwise(nodes))

    @staticmethod
    def ring_edges(nodes: Sequence[Node]) -> list[tuple[Node, Node]]:
        return [*Cluster.line_edges(nodes), (nodes[-1], nodes[0])]

    def partition(self, *groups: Sequence[Node]) -> None:
        """Cut every link between nodes of different groups, both ways."""
        group_of = {node.name: i for i, group in enumerate(groups) for node in group}
        for node in self.nodes:
            if node.proxy is None:
                raise HarnessError(f"{node.name} has no proxy to cut")
            others = {o.node_id for o in self.nodes
                      if o.name in group_of and group_of[o.name] != group_of.get(node.name)}  # fmt: skip
            node.proxy.refuse_senders(others)

    def heal(self) -> None:
        for node in self.nodes:
            if node.proxy is not None:
                node.proxy.heal()

    def bytes_received(self) -> dict[str, int]:
        """Bytes each node received from its peers, as the proxies counted them."""
        by_id = {node.node_id: node.name for node in self.nodes}
        received = {node.name: 0 for node in self.nodes}
        for node in self.nodes:
            if node.proxy is None:
                continue
            for sender, count in list(node.proxy.in_by_sender.items()):
                if sender in by_id:
                    received[node.name] += count
            for sender, count in list(node.proxy.out_by_sender.items()):
                if sender in by_id:
                    received[by_id[sender]] += count
        return received

    # --- queries over every node

    def cli_all(self, *args: str, nodes: Sequence[Node] | None = None,
                timeout: float = CLI_TIMEOUT_S) -> dict[str, CliResult]:  # fmt: skip
        """Run one command on several nodes at once."""
        nodes = self.nodes if nodes is None else nodes
        procs = [(node, node.spawn_cli(*args)) for node in nodes]
        results = {}
        for node, proc in procs:
            results[node.name] = Node.finish_cli(proc, args, timeout)
        return results

    def annonces_all(self, nodes: Sequence[Node] | None = None) -> dict[str, list[dict]]:
        """What each node holds (admin API), by node name."""
        nodes = self.nodes if nodes is None else nodes
        return {node.name: node.annonces() for node in nodes}

    # --- reporting and cleanup

    def logs(self, lines: int = 60) -> str:
        parts = []
        for node in self.nodes:
            parts.append(f"----- {node.name} ({node.node_id[:8]}, {node.public_url} -> "
                         f"{node.listen}) log tail -----\n{node.log_tail(lines)}")  # fmt: skip
        return "\n".join(parts)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        errors = []
        for node in self.nodes:  # SIGTERM all at once, then wait for each
            if node.running:
                _kill_group(node.process.pid, signal.SIGTERM)
        for node in self.nodes:
            try:
                node.stop()
            except Exception as exc:  # noqa: BLE001 - stop the others anyway
                errors.append(exc)
        for proxy in self.proxies:
            with contextlib.suppress(Exception):
                proxy.close()
        if self._proxy_loop is not None:
            self._proxy_loop.close()
        if not self.keep_dir:
            shutil.rmtree(self.base, ignore_errors=True)
        if errors:
            raise errors[0]


def _field(output: str, label: str) -> str:
    match = re.search(rf"^\s*{label}:\s+(\S+)\s*$", output, re.MULTILINE)
    if not match:
        raise HarnessError(f"no {label!r} in the output of troc init: {output!r}")
    return match.group(1)
