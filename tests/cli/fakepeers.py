"""Peers that misbehave on purpose, for tests against real `troc run` processes.

- ``HostileNode``: an aiohttp server, on a loop of its own in a thread, that
  serves a correctly signed node document whose text fields hold whatever the
  test gives (terminal escapes, carriage returns, bidi controls).
- ``SilentPeer``: a TCP port whose connections are accepted and never answered.
- ``UnacceptingPeer``: a TCP port whose backlog is full, so that a new
  connection is never accepted (the handshake never completes).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time

from aiohttp import web

from protocol import limits
from protocol.identity import NodeKey, b64url_encode
from protocol.nodedoc import NODEDOC_DOMAIN


class HostileNode:
    """Serves ``/.well-known/troc``: a document signed by ``key`` with ``fields`` changed."""

    def __init__(self, key: NodeKey, **fields: object) -> None:
        self.key = key
        self._fields = fields
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._runner = self._call(self._start())
        self.port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{self.port}"

    def document(self) -> dict[str, str]:
        fields = {
            "id": self.key.node_id_text, "fingerprint": self.key.fingerprint,
            "name": "Centre social", "url": self.url, "area": "Agen",
            "protocol": limits.PROTOCOL_VERSION, "software": "troc 0.1.0",
            "issued": int(time.time()), **self._fields,
        }  # fmt: skip
        text = json.dumps(fields, ensure_ascii=False, sort_keys=True)
        signature = self.key.sign(NODEDOC_DOMAIN + text.encode("utf-8"))
        return {"document": text, "signature": b64url_encode(signature)}

    async def _start(self) -> web.AppRunner:
        app = web.Application()
        app.router.add_get("/.well-known/troc", self._serve)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return runner

    async def _serve(self, _request: web.Request) -> web.Response:
        return web.json_response(self.document())

    def _call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)

    def close(self) -> None:
        self._call(self._runner.cleanup())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()


class SilentPeer:
    """Accepts every connection, reads what comes, never answers."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.accepted: list[socket.socket] = []
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        self._listener.settimeout(0.2)
        while not self._closed.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self._closed.set()
        self._thread.join(5)
        for conn in [*self.accepted, self._listener]:
            conn.close()


class UnacceptingPeer:
    """A listening port whose accept queue is full: new connections never complete.

    Linux keeps at most backlog + 1 connections waiting to be accepted and
    drops the handshake of any other, so a connect to it times out.
    """

    def __init__(self) -> None:
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(0)
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._fillers = []
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", self.port))
            self._fillers.append(filler)
        time.sleep(0.2)

    def connects(self, timeout: float = 1.0) -> bool:
        """Whether a new connection completes within ``timeout`` (it must not)."""
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=timeout).close()
        except OSError:
            return False
        return True

    def close(self) -> None:
        for sock in [*self._fillers, self._listener]:
            sock.close()
