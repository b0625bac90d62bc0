"""The node's loops wait for wake-ups in one way, and a shutdown always stops them."""

from __future__ import annotations

import asyncio

import pytest

from node.clock import wait_until_set


async def test_a_wait_says_whether_its_event_was_set():
    event = asyncio.Event()
    assert await wait_until_set(event, 0.01) is False
    event.set()
    assert await wait_until_set(event, 10) is True


async def test_a_wait_cancelled_as_its_event_is_set_is_still_cancelled():
    """The race asyncio.wait_for loses on Python 3.11: the wake-up and the shutdown's
    cancellation in the same turn of the loop. The loop waiting must stop."""
    event = asyncio.Event()
    task = asyncio.create_task(wait_until_set(event, 10))
    await asyncio.sleep(0)
    event.set()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
