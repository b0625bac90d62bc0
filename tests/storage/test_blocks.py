"""Blocks between members, stored (both backends); searches leave blocked members out; 0016."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect, text

from protocol.identity import NodeKey
from storage import annonces as annonce_store
from storage import blocks
from storage.blocks import Who
from storage.db import _alembic_config, schema_revision
from storage.schema import metadata
from storage.search import Query, run_search
from tests.factories import NOW, make_signed

A, B = b"\xaa" * 32, b"\xbb" * 32
MARIE, PAUL, LUCIE = Who(A, "marie"), Who(B, "paul"), Who(A, "lucie")
NODE_B = NodeKey.from_seed(b"\xbb" * 32)


async def test_a_block_is_held_once_joins_both_ways_and_is_lifted_once(db):
    assert await db.write(blocks.add_block, MARIE, PAUL, name="Paul B.", now=NOW)
    assert not await db.write(blocks.add_block, MARIE, PAUL, name="Paul B.", now=NOW + 1)
    assert await db.read(blocks.is_blocked, MARIE, PAUL)
    assert not await db.read(blocks.is_blocked, PAUL, MARIE)
    assert await db.read(blocks.apart, MARIE, PAUL) and await db.read(blocks.apart, PAUL, MARIE)
    assert not await db.read(blocks.apart, MARIE, LUCIE)
    assert await db.read(blocks.kept_apart, PAUL) == {MARIE}
    assert await db.read(blocks.kept_apart, MARIE) == {PAUL}
    assert await db.read(blocks.any_apart, PAUL) and not await db.read(blocks.any_apart, LUCIE)
    (listed,) = await db.read(blocks.blocks_by, MARIE)
    assert (listed.blocked, listed.name, listed.created_at) == (PAUL, "Paul B.", NOW)
    assert await db.read(blocks.count_by, MARIE) == 1
    assert await db.read(blocks.count_from_node, A) == 1
    assert await db.read(blocks.count_from_node, B) == 0
    assert await db.write(blocks.remove_block, MARIE, PAUL)
    assert not await db.write(blocks.remove_block, MARIE, PAUL)
    assert await db.read(blocks.blocks_by, MARIE) == []


async def test_the_same_handle_on_another_node_is_another_member(db):
    await db.write(blocks.add_block, MARIE, PAUL, name="", now=NOW)
    assert not await db.read(blocks.apart, MARIE, Who(A, "paul"))
    assert not await db.read(blocks.apart, Who(B, "marie"), PAUL)


async def test_a_search_leaves_out_the_annonces_of_members_kept_apart_both_ways(db):
    pauls = make_signed(NODE_B, title="Cours de tricot", author_handle="paul")
    others = make_signed(NODE_B, title="Cours de guitare", author_handle="jean")
    await db.write(annonce_store.store_revisions, [pauls, others], now=NOW)

    async def seen(viewer) -> list[str]:
        page = await db.read(run_search, Query(viewer=viewer), now=NOW, communes={})
        return sorted(h.title for h in page.hits)

    assert await seen((A, "marie")) == ["Cours de guitare", "Cours de tricot"]
    await db.write(blocks.add_block, MARIE, Who(NODE_B.node_id, "paul"), name="", now=NOW)
    assert await seen((A, "marie")) == ["Cours de guitare"]  # she blocked him
    assert await seen((A, "lucie")) == ["Cours de guitare", "Cours de tricot"]
    assert await seen(None) == ["Cours de guitare", "Cours de tricot"]
    await db.write(blocks.remove_block, MARIE, Who(NODE_B.node_id, "paul"))
    await db.write(blocks.add_block, Who(NODE_B.node_id, "jean"), MARIE, name="", now=NOW)
    assert await seen((A, "marie")) == ["Cours de tricot"]  # he blocked her


async def test_migrations_give_the_safety_tables_the_shape_schema_py_says(db):
    def shape(sync_conn, name):
        inspector = inspect(sync_conn)
        return ({c["name"] for c in inspector.get_columns(name)},
                {i["name"] for i in inspector.get_indexes(name)},
                inspector.get_pk_constraint(name)["constrained_columns"])  # fmt: skip

    async with db.engine.connect() as conn:
        for name in ("member_blocks", "message_reports"):
            columns, indexes, primary = await conn.run_sync(shape, name)
            table = metadata.tables[name]
            assert columns == {c.name for c in table.columns}, name
            assert indexes == {i.name for i in table.indexes}, name
            assert primary == [c.name for c in table.primary_key.columns], name


async def test_migration_0016_goes_back_and_up_again(db):
    async def to(revision: str, how) -> None:
        async with db.engine.begin() as conn:
            await conn.run_sync(lambda c: how(_alembic_config(c), revision))

    await db.write(blocks.add_block, MARIE, PAUL, name="", now=NOW)
    await to("0015", command.downgrade)
    try:
        async with db.engine.connect() as conn:
            tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
            assert "member_blocks" not in tables and "message_reports" not in tables
            assert (await conn.execute(text("SELECT count(*) FROM reports"))).scalar_one() == 0
    finally:
        await to("head", command.upgrade)
    current, head = await schema_revision(db)
    assert current == head
    assert await db.read(blocks.blocks_by, MARIE) == []
    assert await db.write(blocks.add_block, MARIE, PAUL, name="", now=NOW)


async def test_a_key_succession_moves_the_blocks_of_the_node_s_members(db):
    new = b"\xcc" * 32
    await db.write(blocks.add_block, MARIE, PAUL, name="", now=NOW)  # Paul is on B
    await db.write(blocks.add_block, Who(B, "jean"), Who(A, "lucie"), name="", now=NOW)
    await db.write(blocks.add_block, MARIE, Who(new, "paul"), name="", now=NOW)  # held both ways
    await db.write(blocks.rename_node, B, new)
    assert await db.read(blocks.blocks_by, MARIE) == [
        blocks.Block(Who(new, "paul"), "", NOW)]  # fmt: skip
    assert await db.read(blocks.is_blocked, Who(new, "jean"), Who(A, "lucie"))
    assert await db.read(blocks.count_from_node, B) == 0
