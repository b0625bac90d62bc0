"""Several processes on one PostgreSQL database: the change notices between them, and the
leader lock. Two Database objects and two Leadership claims stand for two processes."""

from __future__ import annotations

import asyncio

import pytest

from storage import workers
from storage.db import Changes, open_database, touch


def test_a_change_notice_carries_topics_and_keys_of_every_kind():
    origin = b"\x01" * 12
    topics = {"annonces": {b"\x02" * 32, b"\x03" * 32}, "members": {7, 9},
              "forms": {("marie", "ab")}, "peers": set()}  # fmt: skip
    assert workers.decode_changes(workers.encode_changes(origin, topics)) == (origin, topics)


def test_a_notice_too_large_or_unpackable_keeps_its_topics_without_keys():
    origin = b"\x01" * 12
    many = {"annonces": {bytes([i % 256, i // 256]) * 16 for i in range(2000)}}
    payload = workers.encode_changes(origin, many)
    assert len(payload) <= workers.NOTIFY_MAX_BYTES
    assert workers.decode_changes(payload) == (origin, {"annonces": None})
    odd = workers.encode_changes(origin, {"outbox": {object()}})
    assert workers.decode_changes(odd) == (origin, {"outbox": None})


@pytest.mark.parametrize("payload", ["", "pas du base64 !", "AAAA", "gqFvxAE=",
                                     "3AAB"])  # fmt: skip
def test_a_malformed_notice_is_refused(payload):
    with pytest.raises(ValueError, match="not a change notice"):
        workers.decode_changes(payload)


async def _eventually(check, timeout: float = 5.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "not heard in time"
        await asyncio.sleep(0.02)


def _touching(conn, topic: str, key) -> None:
    touch(conn, topic, key)


async def test_what_one_process_commits_the_other_hears_once_and_a_rollback_never(postgres_url):
    one, other = open_database(postgres_url), open_database(postgres_url)
    heard_one: list[Changes] = []
    heard_other: list[Changes] = []
    one.on_change(heard_one.append)
    other.on_change(heard_other.append)
    try:
        await one.share_changes(postgres_url)
        await other.share_changes(postgres_url)
        await one.write(_touching, "annonces", b"\x05" * 32)
        await _eventually(lambda: heard_other)
        assert heard_other[0].keys("annonces") == {b"\x05" * 32}
        assert len(heard_one) == 1  # its own change, once: not heard back from the channel

        def failing(conn) -> None:
            touch(conn, "peers", b"\x06" * 32)
            raise RuntimeError("the unit fails")

        with pytest.raises(RuntimeError):
            await one.write(failing)
        await other.write(_touching, "members", 3)  # a marker after it
        await _eventually(lambda: any("members" in c for c in heard_one))
        assert not any("peers" in c for c in heard_one + heard_other)
    finally:
        await one.close()
        await other.close()


async def test_one_leader_at_a_time_and_the_next_takes_over_when_it_goes(postgres_url):
    dsn = workers.dsn_of(postgres_url)
    first, second = workers.Leadership(dsn, 0), workers.Leadership(dsn, 1)
    db = open_database(postgres_url)
    try:
        assert await first.try_take() is True
        assert await second.try_take() is False
        assert await first.try_take() is True  # still leading: the lock is checked, not lost
        listed = await db.read(workers.workers)
        assert sorted((w["worker"], w["leader"]) for w in listed) == [(0, True), (1, False)]
        await first.close()  # the process ends: its session, and the lock, go
        assert await second.try_take() is True
        assert await first.try_take() is False
    finally:
        for claim in (first, second):
            await claim.close()
        await db.close()


async def test_a_leader_whose_connection_dies_stops_leading(postgres_url):
    dsn = workers.dsn_of(postgres_url)
    claim = workers.Leadership(dsn, 0)
    try:
        assert await claim.try_take() is True
        claim._conn.terminate()  # the database went away under it
        other = workers.Leadership(dsn, 1)
        assert await other.try_take() is True
        assert await claim.try_take() is False
        await other.close()
    finally:
        await claim.close()


async def test_sqlite_lists_no_workers(tmp_path):
    from storage.db import migrate, sqlite_url

    db = open_database(sqlite_url(tmp_path / "troc.db"))
    try:
        await migrate(db)
        assert await db.read(workers.workers) == []
    finally:
        await db.close()


async def test_two_workers_making_the_node_secret_at_once_agree_on_one(postgres_url):
    """Both workers of a new node ask for its secret as they start: the one that inserts
    second must take the first one's value, not fail (it did: the worker exited)."""
    import asyncpg

    from storage.notices import node_secret

    first = asyncpg.connect(workers.dsn_of(postgres_url))
    conn = await first
    db = open_database(postgres_url)
    try:
        async with conn.transaction():
            await conn.execute("INSERT INTO node_secrets (name, value) VALUES ($1, $2)",
                               "race_test", b"\x01" * 32)  # fmt: skip
            # The other worker reads no row yet, and its insert waits for this one.
            second = asyncio.create_task(db.write(node_secret, "race_test", b"\x02" * 32))
            await asyncio.sleep(0.3)
            assert not second.done()
        assert await asyncio.wait_for(second, 10) == b"\x01" * 32
        assert await db.write(node_secret, "race_test", b"\x03" * 32) == b"\x01" * 32
    finally:
        await conn.close()
        await db.close()
