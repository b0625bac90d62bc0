"""Reports: listed for the operator, resolved, forwarded and received once; migration 0007."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import func, inspect, select, text

from storage import reports as report_store
from storage import residents
from storage.db import _alembic_config, schema_revision
from storage.errors import NotFound
from storage.schema import metadata, reports
from tests.factories import NOW

NODE_A, NODE_B, NODE_C = b"\xaa" * 32, b"\xbb" * 32, b"\xcc" * 32
UID = b"u" * 16


async def local_report(db, member_id=None, reason="argent", details="Il demande 20 €."):
    return await db.write(report_store.add_report, origin=NODE_B, uid=UID, title="Vélo",
                                      member_id=member_id, reason=reason, details=details,
                                      now=NOW)  # fmt: skip


async def forwarded(db, key=b"k" * 16, from_node=NODE_B):
    return await db.write(report_store.add_forwarded_report, from_node=from_node, report_key=key, origin=NODE_A, uid=UID, title="Perceuse",
        reason="arnaque", details="", now=NOW,
    )  # fmt: skip


async def count_reports(db) -> int:
    async with db.engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(reports))).scalar_one()


async def test_open_reports_name_the_member_and_resolved_ones_leave_the_default_list(db):
    marie = await db.write(residents.create_member, handle="marie", display_name="Marie",
                                          password_hash="h", state="active", now=NOW)  # fmt: skip
    first = await local_report(db, marie.id)
    second = await local_report(db, None, reason="autre")
    listed = await db.read(report_store.list_reports)
    assert [(r.id, r.member_handle, r.state) for r in listed] == [
        (first, "marie", "open"), (second, None, "open")]  # fmt: skip
    resolved = await db.write(report_store.resolve_report, first, note="Vu avec elle.", now=NOW + 60)
    assert (resolved.state, resolved.note, resolved.handled_at) == ("resolved", "Vu avec elle.",
                                                                    NOW + 60)  # fmt: skip
    assert [r.id for r in await db.read(report_store.list_reports)] == [second]
    assert [r.id for r in await db.read(report_store.list_reports, None)] == [first, second]


async def test_an_unknown_report_is_not_found(db):
    with pytest.raises(NotFound):
        await db.read(report_store.get_report, 12345)
    with pytest.raises(NotFound):
        await db.write(report_store.resolve_report, 12345, note=None, now=NOW)
    with pytest.raises(NotFound):
        await db.write(report_store.report_key_for, 12345, b"n" * 16)


async def test_a_report_keeps_the_key_it_was_first_given(db):
    report_id = await local_report(db)
    assert await db.write(report_store.report_key_for, report_id, b"1" * 16) == b"1" * 16
    assert await db.write(report_store.report_key_for, report_id, b"2" * 16) == b"1" * 16
    done = await db.write(report_store.report_forwarded, report_id, now=NOW + 5)
    assert (done.state, done.handled_at, done.report_key) == ("forwarded", NOW + 5, b"1" * 16)


async def test_a_forwarded_report_is_stored_once_per_node_and_key(db):
    assert await forwarded(db) is True
    assert await forwarded(db) is False
    assert await forwarded(db, from_node=NODE_C) is True  # another node's key space
    assert await count_reports(db) == 2
    listed = await db.read(report_store.list_reports)
    assert {(r.from_node, r.member_id, r.annonce_title) for r in listed} == {
        (NODE_B, None, "Perceuse"), (NODE_C, None, "Perceuse")}  # fmt: skip


async def test_local_reports_with_the_same_key_are_not_taken_for_duplicates(db):
    """Local reports have no forwarding node: the uniqueness does not apply to them."""
    for report_id in (await local_report(db), await local_report(db)):
        await db.write(report_store.report_key_for, report_id, b"s" * 16)
    assert await count_reports(db) == 2


async def test_migrations_give_reports_the_columns_and_indexes_schema_py_says(db):
    def shape(sync_conn):
        inspector = inspect(sync_conn)
        columns = {c["name"] for c in inspector.get_columns("reports")}
        indexes = {i["name"]: bool(i["unique"]) for i in inspector.get_indexes("reports")}
        return columns, indexes

    async with db.engine.connect() as conn:
        columns, indexes = await conn.run_sync(shape)
    assert columns == {c.name for c in metadata.tables["reports"].columns}
    assert indexes == {i.name: i.unique for i in metadata.tables["reports"].indexes}


async def test_migration_0007_keeps_the_reports_made_before_it_and_goes_back(db):
    async def to(revision: str, how) -> None:
        async with db.engine.begin() as conn:
            await conn.run_sync(lambda c: how(_alembic_config(c), revision))

    await to("0006", command.downgrade)
    try:
        async with db.engine.begin() as conn:
            await conn.execute(
                text("INSERT INTO reports (annonce_origin, annonce_uid, annonce_title, reason,"
                     " details, state, created_at) VALUES (:o, :u, 'Vélo', 'abus', 'x',"
                     " 'open', :t)"), {"o": NODE_B, "u": UID, "t": NOW})  # fmt: skip
    finally:
        await to("head", command.upgrade)
    current, head = await schema_revision(db)
    assert current == head
    [kept] = await db.read(report_store.list_reports)
    assert (kept.annonce_title, kept.reason, kept.from_node, kept.report_key, kept.note) == (
        "Vélo", "abus", None, None, None)  # fmt: skip
