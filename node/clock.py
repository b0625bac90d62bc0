"""The one way to read the time: the node's clock, by its application.

``create_app(..., clock=...)`` receives the clock (``time.time`` in a real
node; tests pass one they move by hand), so that signatures, expiries,
back-offs and pages agree on the time within one node. Everything reads it
through ``now``; offline jobs that run without an application (the CLI's
backup, key replacement, demo) read the machine's time through
``machine_now``. Nothing else calls ``time.time``.
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from node.keys import clock_key


def now(app: web.Application) -> int:
    """The node's time, in whole Unix seconds."""
    return int(app[clock_key]())


def now_precise(app: web.Application) -> float:
    """The node's time, in Unix seconds with their fraction (for waits and uptimes)."""
    return app[clock_key]()


def machine_now() -> int:
    """The machine's time, in whole Unix seconds, for jobs run without a node application."""
    return int(time.time())


async def wait_until_set(event: asyncio.Event, timeout: float) -> bool:
    """Wait for ``event`` at most ``timeout`` seconds; whether it was set.

    The one way the node's loops wait for a wake-up. Not ``asyncio.wait_for``:
    on Python 3.11 it can swallow a cancellation that arrives as the event is
    set, and the loop it belongs to then never stops (a node shutting down
    hangs); ``asyncio.timeout`` keeps the cancellation.
    """
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return False
    return True
