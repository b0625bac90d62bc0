"""storage.rights finds every row keyed to a member, by walking the schema, on both backends.

The completeness checks are the guard for tables added later: a column that
looks like a member's key but is not a foreign key to members.id must be
classified in ``OTHER_KEYS``, or these tests fail.
"""

from __future__ import annotations

from sqlalchemy import Column, MetaData, String, Table, inspect, select

from storage import residents, rights
from storage.schema import conversations, metadata, retired_handles
from tests.factories import NOW

OWN = b"\x07" * 32


def test_every_key_like_column_without_a_foreign_key_is_classified():
    unclassified = set(rights.key_like_columns()) - set(rights.OTHER_KEYS)
    assert unclassified == set(), (
        "a column names a member without a foreign key to members.id: say in "
        f"storage.rights.OTHER_KEYS how the export and the erasure cover it: {unclassified}")


def test_every_table_with_a_member_key_is_exported():
    exported = set(rights.export_tables())
    keyed = {table.name for table, _, _ in rights.member_foreign_keys()}
    assert keyed <= exported
    assert {"members", "messages", "annonces", "member_blocks"} <= exported
    assert set(rights.KEYED_OTHERWISE) <= exported


def test_the_deny_lists_name_columns_that_exist():
    for table, column in rights.SECRET_COLUMNS | rights.UNREADABLE_COLUMNS:
        assert column in metadata.tables[table].columns, (table, column)
    for table, column in rights.OTHER_KEYS:
        assert column in metadata.tables[table].columns, (table, column)


def test_the_classification_would_catch_a_new_table_keyed_by_handle():
    md = MetaData()
    Table("thanks_given", md, Column("to_handle", String(32), primary_key=True))
    assert rights.key_like_columns(md) == [("thanks_given", "to_handle")]


async def test_migrations_create_the_rights_columns_as_schema_py_says(db):
    def columns(sync_conn):
        inspector = inspect(sync_conn)
        return {name: {c["name"] for c in inspector.get_columns(name)}
                for name in ("retired_handles", "conversations")}  # fmt: skip

    async with db.engine.connect() as conn:
        found = await conn.run_sync(columns)
    for name, names in found.items():
        assert names == {c.name for c in metadata.tables[name].columns}


async def test_an_export_page_leaves_secrets_out_and_reads_only_the_members_rows(db):
    def two(conn):
        a = residents.create_member(conn, handle="marie-1", display_name="Marie", state="active",
                                    password_hash="$argon2id$secret", now=NOW)  # fmt: skip
        b = residents.create_member(conn, handle="paul-2", display_name="Paul", state="active",
                                    password_hash="$argon2id$other", now=NOW)  # fmt: skip
        residents.create_session(conn, a.id, b"\x01" * 32, now=NOW, lifetime_s=60)
        residents.create_session(conn, b.id, b"\x02" * 32, now=NOW, lifetime_s=60)
        return a, b

    a, b = await db.write(two)
    whose = rights.Whose(a.id, a.handle, OWN)
    (member,) = await db.read(rights.export_page, "members", whose, offset=0)
    assert member["handle"] == "marie-1" and "password_hash" not in member
    (session,) = await db.read(rights.export_page, "web_sessions", whose, offset=0)
    assert session == {"member_id": a.id, "created_at": NOW, "expires_at": NOW + 60}


async def test_erasing_a_member_retires_handle_and_id_on_both_backends(db):
    def make(conn):
        return residents.create_member(conn, handle="marie-1", display_name="Marie",
                                       state="active", password_hash="x", now=NOW)  # fmt: skip

    marie = await db.write(make)
    await db.write(rights.erase_member, marie.id, marie.handle, OWN, at=NOW)
    assert await db.read(residents.member_by_id, marie.id) is None
    assert await db.read(residents.handle_taken, "marie-1")
    assert await db.read(rights.retired_at, "marie-1") == NOW
    again = await db.write(lambda conn: residents.create_member(
        conn, handle="marie-2", display_name="Marie", state="active", password_hash="x", now=NOW))
    assert again.id != marie.id
    async with db.engine.connect() as conn:
        rows = (await conn.execute(select(retired_handles))).all()
        assert [(r.handle, r.member_id) for r in rows] == [("marie-1", marie.id)]
        assert (await conn.execute(select(conversations))).all() == []
