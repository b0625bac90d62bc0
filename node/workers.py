"""A node on several processes: the background tasks in one of them, the leader.

With ``workers`` = 1 (the default, and the only choice on SQLite) one
process does everything, as it always did. With ``workers`` = N on
PostgreSQL, ``troc run`` becomes a small supervisor (``supervise``) that
starts N processes, ``troc run --worker I``, and starts again any that dies
(after ``RESTART_DELAY_S``). Each worker serves the web view and the
federation API on the same port (``SO_REUSEPORT``: the kernel spreads the
connections); worker 0 also serves the admin socket.

The background tasks — the courier, anti-entropy and the purge, mail —
run in the leader only. The features declare them with ``add_background``
instead of adding cleanup contexts of their own; ``background_ctx`` runs
them at once in a single process, or, with several workers, whenever this
process holds the leader lock (storage.workers ``Leadership``), asked every
``LEADER_POLL_S``: a leader that dies, even by SIGKILL, frees the lock with
its database session, and another worker leads within about a second. A
leader that loses its database connection stops its background tasks
before anything else.

What one process caches, every process refreshes: their units of work's
changes are shared through the database (storage.db ``share_changes``), so
a page cache, the reconciled set or a courier is woken in every worker by a
change made in any of them.

Known limit: the node key lives in each process; ``troc key rotate`` is
refused while several workers run (stop the node, rotate with ``workers = 1``,
start it again).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import sys
import time
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from pathlib import Path

from aiohttp import web

from node.keys import background_key, db_key, leadership_key
from storage import workers as worker_store

log = logging.getLogger("troc.node")

LEADER_POLL_S = 1.0  # how often a worker asks for the leader lock (and the leader checks it)
RESTART_DELAY_S = 1.0  # a worker that died is started again after this
STOP_TIMEOUT_S = 10.0  # workers get this long to stop on SIGTERM, then are killed


async def _step(app: web.Application, leadership: worker_store.Leadership,
                stack: AsyncExitStack | None) -> AsyncExitStack | None:  # fmt: skip
    """Ask for the lock (or check it is held), and start or stop the background tasks."""
    leading = await leadership.try_take()
    if leading and stack is None:
        log.info("this worker leads: background tasks start", extra={"worker": leadership.index})
        return await _start_all(app)
    if not leading and stack is not None:
        log.warning("this worker no longer leads: background tasks stop",
                    extra={"worker": leadership.index})  # fmt: skip
        await stack.aclose()
        return None
    return stack


def add_background(app: web.Application, ctx) -> None:
    """A cleanup context of the leader's: started when this process leads, stopped when not."""
    app[background_key].append(ctx)


@asynccontextmanager
async def _entered(app: web.Application, ctx):
    steps = ctx(app)
    await steps.__anext__()
    try:
        yield
    finally:
        with suppress(StopAsyncIteration):
            await steps.__anext__()


async def _start_all(app: web.Application) -> AsyncExitStack:
    stack = AsyncExitStack()
    try:
        for ctx in app[background_key]:
            await stack.enter_async_context(_entered(app, ctx))
    except BaseException:
        await stack.aclose()  # what started stops: nothing runs half
        raise
    return stack


async def background_ctx(app: web.Application):
    """Cleanup context, the last one: the background tasks, here or in the leader."""
    leadership = app.get(leadership_key)
    if leadership is None:
        stack = await _start_all(app)
        yield
        await stack.aclose()
        return
    task = asyncio.create_task(_lead(app, leadership))
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _lead(app: web.Application, leadership: worker_store.Leadership) -> None:
    stack: AsyncExitStack | None = None
    try:
        while True:
            try:
                stack = await _step(app, leadership, stack)
            except Exception:  # noqa: BLE001 - a fault of one step must not end the claim
                log.exception("leading failed; trying again", extra={"worker": leadership.index})
                if stack is not None:
                    await stack.aclose()
                    stack = None
                await leadership.close()  # another worker may lead meanwhile
            await asyncio.sleep(LEADER_POLL_S)
    finally:
        if stack is not None:
            await stack.aclose()
        await leadership.close()


async def worker_figures(app: web.Application) -> list[dict]:
    """The node's workers and which one leads, for ``troc status`` (empty: one process)."""
    if app.get(leadership_key) is None:
        return []
    return await app[db_key].read(worker_store.workers)


# --- The supervisor -----------------------------------------------------------------------


def _worker_command(data_dir: Path, index: int, listen: str | None) -> list[str]:
    command = [sys.executable, "-c", "from cli.main import main; main()", "--data",
               str(data_dir), "run", "--worker", str(index)]  # fmt: skip
    return command + (["--listen", listen] if listen else [])


def supervise(data_dir: Path, count: int, listen: str | None = None) -> int:
    """Run ``count`` workers until SIGTERM or SIGINT; start again any that dies."""
    stopping = False

    def stop(_signum, _frame) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    running: dict[int, subprocess.Popen] = {}
    due: dict[int, float] = dict.fromkeys(range(count), 0.0)
    log.info("starting workers", extra={"workers": count})
    try:
        while not stopping:
            for index, at in list(due.items()):
                if time.monotonic() >= at and not stopping:
                    running[index] = subprocess.Popen(_worker_command(data_dir, index, listen))
                    del due[index]
            for index, proc in list(running.items()):
                code = proc.poll()
                if code is not None and not stopping:
                    del running[index]
                    log.warning("worker stopped; starting it again",
                                extra={"worker": index, "exit": code})  # fmt: skip
                    due[index] = time.monotonic() + RESTART_DELAY_S
            time.sleep(0.2)
    finally:
        for proc in running.values():
            with suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for proc in running.values():
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("workers stopped")
    return 0
