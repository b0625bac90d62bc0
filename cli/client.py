"""The admin channel, from the command line: JSON over the node's Unix socket.

``admin_client(ctx)`` finds the running node of ``--data DIR`` and the admin
token: ``--token`` first, then ``TROC_ADMIN_TOKEN``, then the token file
``troc init`` wrote. ``AdminClient.call`` sends one request and returns the
JSON answer. A node that is not running, a refused token, and every problem
document the node answers end as one line (a TrocError, which the ``troc``
group prints as such).
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import click

from node.errors import ConfigError
from node.keyfile import load_admin_token
from node.settings import Secret, load_settings
from protocol.errors import TrocError

TOKEN_ENV = "TROC_ADMIN_TOKEN"
TOKEN_META = "troc.admin_token"  # where the root group's --token option is kept
ADMIN_TIMEOUT_S = 600.0  # a sync with many peers can take a while
ADMIN_CONNECT_TIMEOUT_S = 5.0
ADMIN_MAX_PATH_CHARS = 2048  # ids, refs and handles are far shorter; the node's limit is 8190
# Node ids and annonce refs are base64url and may start with "-": commands
# taking one must not read it as an option (a mistyped option then reaches the
# node as an id, which it refuses in one line).
TAKES_IDS = {"ignore_unknown_options": True}


class NodeNotRunning(TrocError):
    """The node does not answer on its admin socket."""

    code = "node-not-running"


class NodeStopped(TrocError):
    """The node closed the admin connection before answering: it is stopping."""

    code = "node-stopped"


class AdminRefused(TrocError):
    """The node refused the command."""

    code = "admin-refused"


def remember_token(ctx: click.Context, _param, value: str | None) -> None:
    """Callback of the root group's ``--token`` option."""
    if value:
        ctx.meta[TOKEN_META] = value


@dataclass(frozen=True)
class AdminClient:
    data_dir: Path
    socket_path: Path
    token: Secret

    def call(self, method: str, path: str, body: dict | None = None):
        """The node's JSON answer (None for 204), or a TrocError."""
        _check_path(path)
        return asyncio.run(self._call(method, path, body))

    async def _call(self, method: str, path: str, body: dict | None):
        connector = aiohttp.UnixConnector(path=str(self.socket_path))
        timeout = aiohttp.ClientTimeout(total=ADMIN_TIMEOUT_S, connect=ADMIN_CONNECT_TIMEOUT_S)
        headers = {"Authorization": f"Bearer {self.token.reveal()}"}
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            try:
                async with session.request(
                    method, f"http://troc{path}", json=body, headers=headers
                ) as response:
                    status, payload = response.status, await response.read()
            except TimeoutError:
                raise AdminRefused(f"no answer from the node in {ADMIN_TIMEOUT_S:g} s") from None
            except aiohttp.ClientConnectorError:
                raise self._not_running() from None
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError):
                # Connected, then cut off: the node went away while answering.
                raise NodeStopped(
                    "the node stopped before it answered (it was stopping or restarting); "
                    "once it runs again, check with `troc status` and run the command again "
                    "if needed"
                ) from None
            except OSError:
                raise self._not_running() from None
        return _answer(status, payload)

    def _not_running(self) -> NodeNotRunning:
        return NodeNotRunning(
            f"the node is not running (nothing answers on {self.socket_path}); "
            f"start it with `troc --data {self.data_dir} run`"
        )


def _check_path(path: str) -> None:
    """Arguments that become part of the path: none empty, none huge (a usage error)."""
    route = path.split("?", 1)[0]
    if "//" in route or route.endswith("/"):
        raise click.UsageError("an argument is empty")
    if len(path) > ADMIN_MAX_PATH_CHARS:
        raise click.UsageError(f"an argument is too long (over {ADMIN_MAX_PATH_CHARS} characters)")


def _answer(status: int, payload: bytes):
    try:
        data = json.loads(payload) if payload else None
    except ValueError:
        data = None
    if status >= 400:
        if status == 401:
            raise AdminRefused("the node refused the admin token (see --token or TROC_ADMIN_TOKEN)")
        detail = data.get("detail") if isinstance(data, dict) else None
        raise AdminRefused(detail or f"the node answered HTTP {status}")
    return data


def admin_client(ctx: click.Context) -> AdminClient:
    data_dir: Path = ctx.find_root().obj
    if not data_dir.is_dir():
        raise ConfigError(f"no node in {data_dir}: run `troc --data {data_dir} init` first")
    settings = load_settings(data_dir)
    token = ctx.meta.get(TOKEN_META) or os.environ.get(TOKEN_ENV)
    secret = Secret(token) if token else load_admin_token(settings.admin_token_path)
    return AdminClient(data_dir, settings.admin_socket_path, secret)
