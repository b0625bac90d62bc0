"""Members, sessions, throttle, profiles, authorship, reports and conversations."""

from __future__ import annotations

import asyncio

import pytest

from storage import conversations as talk
from storage import reports as report_store
from storage import residents
from storage.errors import Conflict
from storage.residents import Place, Profile
from tests.factories import NOW

NODE_A, NODE_B = b"\xaa" * 32, b"\xbb" * 32


async def read(db, fn, *args):
    return await db.read(fn, *args)


async def member(db, handle="marie", state=residents.ACTIVE):
    return await db.write(residents.create_member, handle=handle, display_name=handle.title(),
                                         password_hash="h", state=state, now=NOW)  # fmt: skip


async def test_handles_are_unique(db):
    await member(db)
    with pytest.raises(Conflict):
        await member(db)


async def test_profile_round_trip_with_home_and_work(db):
    m = await member(db)
    assert await read(db, residents.get_profile, m.id) == Profile()
    profile = Profile("Retraitée, j'aime jardiner.", "jardin, couture",
                      Place(commune="47001"), Place(lat=4420, lon=63))  # fmt: skip
    await db.write(residents.save_profile, m.id, display_name="Marie D.", profile=profile, now=NOW)
    assert await read(db, residents.get_profile, m.id) == profile
    assert (await db.read(residents.member_by_id, m.id)).display_name == "Marie D."


async def test_sessions_expire_and_end(db):
    m = await member(db)
    await db.write(residents.create_session, m.id, b"t" * 32, now=NOW, lifetime_s=60)
    assert (await read(db, residents.session_member, b"t" * 32, NOW)).id == m.id
    assert await read(db, residents.session_member, b"t" * 32, NOW + 60) is None
    await db.write(residents.end_session, b"t" * 32)
    assert await read(db, residents.session_member, b"t" * 32, NOW) is None


async def test_login_attempts_count_within_a_window(db):
    keys = ["acct:marie", "addr:127.0.0.1"]
    for attempt in range(1, 4):
        counted = await db.write(residents.count_attempt, keys, now=NOW, window_s=600)
        assert counted == {"acct:marie": attempt, "addr:127.0.0.1": attempt}
    assert await db.read(residents.recent_failures, keys, now=NOW, window_s=600) == {
        "acct:marie": 3, "addr:127.0.0.1": 3}  # fmt: skip
    assert await db.read(residents.recent_failures, keys, now=NOW + 600, window_s=600) == {}
    assert await db.write(residents.count_attempt, keys[:1], now=NOW + 600,
                          window_s=600) == {"acct:marie": 1}  # a new window  # fmt: skip
    assert await db.read(residents.recent_failures, keys, now=NOW + 600, window_s=600) == {
        "acct:marie": 1}  # fmt: skip
    await db.write(residents.forgive_attempt, keys[:1], [])
    assert await db.read(residents.recent_failures, keys, now=NOW + 600, window_s=600) == {}


async def test_concurrent_attempts_each_get_their_own_count(db):
    """The throttle's count is taken atomically: thirty at once are numbered 1 to 30."""
    counted = await asyncio.gather(*(
        db.write(residents.count_attempt, ["acct:marie"], now=NOW, window_s=600)
        for _ in range(30)
    ))  # fmt: skip
    assert sorted(c["acct:marie"] for c in counted) == list(range(1, 31))


async def test_a_success_forgets_the_account_and_lowers_the_address(db):
    keys = ["acct:marie", "addr:127.0.0.1"]
    for _ in range(3):
        await db.write(residents.count_attempt, keys, now=NOW, window_s=600)
    await db.write(residents.forgive_attempt, keys[:1], keys[1:])
    assert await db.read(residents.recent_failures, keys, now=NOW, window_s=600) == {
        "addr:127.0.0.1": 2}  # fmt: skip


async def test_reports_are_listed_for_moderators(db):
    m = await member(db)
    await db.write(report_store.add_report, origin=NODE_A, uid=b"u" * 16, title="Vélo", member_id=m.id,
                               reason="spam", details="<b>pub</b>", now=NOW)  # fmt: skip
    [report] = await db.read(report_store.list_reports)
    assert (report.reason, report.details, report.member_id) == ("spam", "<b>pub</b>", m.id)


async def test_conversation_unread_counts_and_privacy(db):
    author, replier, stranger = await member(db, "marie"), await member(db, "paul"), await member(db, "eve")
    conv = await db.write(talk.open_conversation, key=b"k" * 16, annonce_origin=NODE_A, annonce_uid=b"u" * 16, title="Vélo",
        author=talk.Party(NODE_A, "marie", "Marie", author.id),
        replier=talk.Party(NODE_A, "paul", "Paul", replier.id), now=NOW)  # fmt: skip
    again = await db.write(talk.open_conversation, key=b"x" * 16, annonce_origin=NODE_A, annonce_uid=b"u" * 16, title="Vélo",
        author=conv.author, replier=conv.replier, now=NOW)  # fmt: skip
    assert again.id == conv.id
    assert await db.write(talk.add_message, conv.id, key=b"m1" * 8, from_author=False,
                                  body="Bonjour !", now=NOW)  # fmt: skip
    assert await db.write(talk.add_message, conv.id, key=b"m1" * 8, from_author=False,
                                  body="Bonjour !", now=NOW) is None  # fmt: skip
    assert await read(db, talk.unread_total, author.id) == 1
    assert await read(db, talk.unread_total, replier.id) == 0
    assert await read(db, talk.inbox, stranger.id) == []
    assert not conv.includes(stranger.id) and conv.includes(author.id)
    await db.write(talk.mark_read, conv, author.id)
    [entry] = await read(db, talk.inbox, author.id)
    assert entry.unread == 0 and entry.conversation.other(author.id).handle == "paul"
    await db.write(talk.add_message, conv.id, key=b"m2" * 8, from_author=True, body="Oui", now=NOW + 1)
    assert await read(db, talk.unread_total, replier.id) == 1
    assert [m.body for m in await read(db, talk.conversation_messages, conv.id)] == ["Bonjour !", "Oui"]


async def test_a_remote_replier_has_no_member_here(db):
    author = await member(db)
    conv = await db.write(talk.open_conversation, key=b"r" * 16, annonce_origin=NODE_A, annonce_uid=b"u" * 16, title="Vélo",
        author=talk.Party(NODE_A, "marie", "Marie", author.id),
        replier=talk.Party(NODE_B, "paul", "Paul"), now=NOW)  # fmt: skip
    assert conv.replier.member_id is None
    assert (await db.read(talk.conversation_by_key, b"r" * 16)).id == conv.id


async def test_members_by_handle_counted_by_state_and_logged_out_everywhere(db):
    marie = await member(db)
    await member(db, "paul", residents.PENDING)
    assert await db.read(residents.member_by_handle, "marie") == marie
    assert await db.read(residents.member_by_handle, "personne") is None
    assert await db.read(residents.member_counts) == {"active": 1, "pending": 1, "suspended": 0}
    for token in (b"a" * 32, b"b" * 32):
        await db.write(residents.create_session, marie.id, token, now=NOW, lifetime_s=60)
    assert await db.write(residents.end_member_sessions, marie.id) == 2
    assert await read(db, residents.session_member, b"a" * 32, NOW) is None
    assert await db.write(residents.end_member_sessions, marie.id) == 0
