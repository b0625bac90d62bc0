"""Forms submitted once: a token is claimed once, its result found again; migration 0010."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import func, inspect, select, text

from storage import forms, residents
from storage.db import _alembic_config, schema_revision
from storage.errors import AlreadySubmitted
from storage.schema import form_submissions, metadata
from tests.factories import NOW


async def member(db, handle="marie"):
    return await db.write(residents.create_member, handle=handle, display_name="Marie",
                          password_hash="h", state="active", now=NOW)  # fmt: skip


async def already(db, fn, *args, **kwargs) -> str:
    with pytest.raises(AlreadySubmitted) as raised:
        await db.write(fn, *args, **kwargs)
    return raised.value.result


async def test_a_token_is_claimed_once_and_the_second_claim_finds_the_first_result(db):
    key = forms.FormKey((await member(db)).id, b"t" * 16)
    await db.write(forms.claim, key, now=NOW)
    await db.write(forms.record_result, key, "ref-1")
    assert await already(db, forms.claim, key, now=NOW + 1) == "ref-1"
    assert await already(db, forms.claim, key, now=NOW + 2) == "ref-1"


async def test_without_a_key_nothing_is_claimed_or_recorded(db):
    await db.write(forms.claim, None, now=NOW)
    await db.write(forms.record_result, None, "ref")


async def test_a_claim_rolled_back_with_its_unit_leaves_the_token_free(db):
    key = forms.FormKey((await member(db)).id, b"t" * 16)

    def failing(conn):
        forms.claim(conn, key, now=NOW)
        raise RuntimeError("the action failed")

    try:
        await db.write(failing)
    except RuntimeError:
        pass
    await db.write(forms.claim, key, now=NOW)


async def test_tokens_are_per_member(db):
    marie, paul = await member(db), await member(db, "paul")
    await db.write(forms.claim, forms.FormKey(marie.id, b"t" * 16), now=NOW)
    await db.write(forms.record_result, forms.FormKey(marie.id, b"t" * 16), "hers")
    await db.write(forms.claim, forms.FormKey(paul.id, b"t" * 16), now=NOW)


async def test_a_draft_is_kept_until_its_form_is_submitted(db):
    key = forms.FormKey((await member(db)).id, b"d" * 16)
    assert await db.read(forms.submission, key) is None
    await db.write(forms.save_draft, key, {"titre": "Vélo 🚲"}, now=NOW)
    await db.write(forms.save_draft, key, {"titre": "Vélo rouge"}, now=NOW)
    assert await db.read(forms.submission, key) == forms.Submission({"titre": "Vélo rouge"}, None)
    await db.write(forms.claim, key, now=NOW)
    await db.write(forms.record_result, key, "ref-2")
    assert await already(db, forms.save_draft, key, {"titre": "Autre"}, now=NOW) == "ref-2"
    assert await db.read(forms.submission, key) == forms.Submission({"titre": "Vélo rouge"}, "ref-2")


async def test_old_tokens_are_forgotten(db):
    marie = await member(db)
    old, new = forms.FormKey(marie.id, b"o" * 16), forms.FormKey(marie.id, b"n" * 16)
    await db.write(forms.claim, old, now=NOW)
    await db.write(forms.claim, new, now=NOW + forms.FORM_MEMORY_S + 1)  # forgets the member's old
    assert await db.read(forms.submission, old) is None
    assert await db.write(forms.forget_before, NOW + forms.FORM_MEMORY_S + 2) == 1
    assert await db.read(forms.submission, new) is None


async def test_migrations_give_form_submissions_the_shape_schema_py_says(db):
    def shape(sync_conn):
        inspector = inspect(sync_conn)
        columns = {c["name"] for c in inspector.get_columns("form_submissions")}
        indexes = {i["name"] for i in inspector.get_indexes("form_submissions")}
        return columns, indexes, inspector.get_pk_constraint("form_submissions")["constrained_columns"]

    async with db.engine.connect() as conn:
        columns, indexes, primary = await conn.run_sync(shape)
    table = metadata.tables["form_submissions"]
    assert columns == {c.name for c in table.columns}
    assert indexes == {i.name for i in table.indexes}
    assert primary == ["member_id", "token"]


async def test_migration_0010_goes_back_and_up_again_keeping_members(db):
    async def to(revision: str, how) -> None:
        async with db.engine.begin() as conn:
            await conn.run_sync(lambda c: how(_alembic_config(c), revision))

    marie = await member(db)
    await db.write(forms.claim, forms.FormKey(marie.id, b"t" * 16), now=NOW)
    await to("0009", command.downgrade)
    try:
        async with db.engine.connect() as conn:
            tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
            assert "form_submissions" not in tables
            assert (await conn.execute(text("SELECT count(*) FROM members"))).scalar_one() == 1
    finally:
        await to("head", command.upgrade)
    current, head = await schema_revision(db)
    assert current == head
    async with db.engine.connect() as conn:
        count = (await conn.execute(select(func.count()).select_from(form_submissions))).scalar_one()
    assert count == 0
    await db.write(forms.claim, forms.FormKey(marie.id, b"t" * 16), now=NOW)
