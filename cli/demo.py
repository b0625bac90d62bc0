"""``troc demo``: three nodes of the agglomeration on loopback, peered in a line.

The nodes are made and seeded by ``node.demo`` before they start, then run
as ``troc run`` processes (one session each, so a Ctrl-C reaches the demo
alone, which then stops them in order). Each child also gets
``PR_SET_PDEATHSIG`` on Linux: if the demo itself is killed, its nodes go
with it. Logs go to DIR/<node>/node.log.
"""

from __future__ import annotations

import asyncio
import ctypes
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from typing import Self

import click

from node.clock import machine_now
from node.demo import DemoNode, create_demo_nodes, load_seed

DEFAULT_BASE_PORT = 8081
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
PR_SET_PDEATHSIG = 1


@click.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Keep the demo's nodes here (new or empty); "
              "default: a temporary directory removed on exit.")  # fmt: skip
@click.option("--base-port", type=click.IntRange(0, 65533), default=DEFAULT_BASE_PORT,
              show_default=True, help="The nodes listen on this port and the next two; "
              "0 picks free ports.")  # fmt: skip
def demo(directory: Path | None, base_port: int) -> None:
    """Start three peered nodes with French demo annonces; Ctrl-C stops them all."""
    ports = _free_ports(3) if base_port == 0 else [base_port + i for i in range(3)]
    _check_ports(ports)
    if directory is not None and directory.exists() and any(directory.iterdir()):
        raise click.ClickException(f"{directory} is not empty: give the demo a new directory")
    # Ctrl-C even when started where SIGINT is ignored (a background job of a script).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    with ExitStack() as stack:
        root = _demo_root(directory, stack)
        nodes = asyncio.run(create_demo_nodes(root, ports, now=machine_now()))
        processes = stack.enter_context(_NodeProcesses())
        try:
            for node in nodes:
                processes.start(node)
            processes.wait_ready(nodes)
            _announce(nodes, root, keep=directory is not None)
            processes.watch()
        except KeyboardInterrupt:
            click.echo("\nStopping the demo…")


def _exit_on_sigterm(_signum, _frame) -> None:
    raise KeyboardInterrupt


def _demo_root(directory: Path | None, stack: ExitStack) -> Path:
    if directory is None:
        root = Path(tempfile.mkdtemp(prefix="troc-demo-"))
        stack.callback(shutil.rmtree, root, ignore_errors=True)
        return root
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _check_ports(ports: list[int]) -> None:
    for port in ports:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                raise click.ClickException(
                    f"port {port} on 127.0.0.1 is already in use: try --base-port 0"
                ) from None


def _announce(nodes: list[DemoNode], root: Path, *, keep: bool) -> None:
    names = " ↔ ".join(n.name for n in nodes)
    click.echo(f"Troc demo: three nodes peered in a line ({names}).")
    width = max(len(n.name) for n in nodes)
    for index, node in enumerate(nodes):
        note = "   relays between the two others" if 0 < index < len(nodes) - 1 else ""
        click.echo(f"  {node.name:<{width}}  {node.url}{note}")
    password = load_seed()["password"]
    click.echo(f"Demo logins (password {password!r}):")
    for node in nodes:
        shown = ", ".join(node.logins[:4])
        click.echo(f"  {node.url}: {shown}, … ({len(node.logins)} residents)")
    where = "kept" if keep else "removed on exit"
    click.echo(f"Data and logs in {root} ({where}). Press Ctrl-C to stop.", nl=True)


class _NodeProcesses:
    """The demo's ``troc run`` processes; all are stopped when the context ends."""

    def __init__(self) -> None:
        self.running: list[tuple[DemoNode, subprocess.Popen]] = []

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc) -> None:
        self.stop_all()

    def start(self, node: DemoNode) -> None:
        log = open(node.data_dir / "node.log", "ab")  # noqa: SIM115 - the child owns it
        with log:
            process = subprocess.Popen(
                [sys.executable, "-m", "cli.main", "--data", str(node.data_dir), "run"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - the demo runs no threads
            )  # fmt: skip
        self.running.append((node, process))

    def wait_ready(self, nodes: list[DemoNode]) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        waiting = list(nodes)
        while waiting:
            self._check_alive()
            waiting = [node for node in waiting if not _answers(node.url + "/healthz")]
            if waiting and time.monotonic() > deadline:
                raise click.ClickException(
                    f"{waiting[0].name} did not start: see {waiting[0].data_dir / 'node.log'}"
                )
            time.sleep(0.2)

    def watch(self) -> None:
        while True:
            self._check_alive()
            time.sleep(0.5)

    def _check_alive(self) -> None:
        for node, process in self.running:
            if process.poll() is not None:
                raise click.ClickException(
                    f"{node.name} stopped (exit {process.returncode}): "
                    f"see {node.data_dir / 'node.log'}"
                )

    def stop_all(self) -> None:
        for _node, process in self.running:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for _node, process in self.running:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.running.clear()


def _die_with_parent() -> None:
    """In the child, before exec: be sent SIGTERM when the demo dies (Linux)."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False
