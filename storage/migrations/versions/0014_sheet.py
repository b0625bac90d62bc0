"""The printed sheet: short codes of annonces.

Every annonce held gets its short code (protocol/short_code.py), so that
``/ref`` finds it through an index. The annonces already held are given
theirs here, in batches; the code is the protocol's own function, which the
specification freezes (docs/protocol-sheet.md), so this migration computes
what the node computes.

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

from protocol.short_code import short_code

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

BATCH = 1000


def upgrade() -> None:
    op.create_table(
        "short_codes",
        sa.Column("origin", sa.LargeBinary(32), primary_key=True),
        sa.Column("uid", sa.LargeBinary(16), primary_key=True),
        sa.Column("code", sa.String(8), nullable=False),
        sa.ForeignKeyConstraint(["origin", "uid"], ["annonces.origin", "annonces.uid"],
                                ondelete="CASCADE", name="fk_short_codes_annonce"),
    )
    op.create_index("ix_short_codes_code", "short_codes", ["code"])
    _give_codes(op.get_bind())


def _give_codes(conn) -> None:
    annonces = sa.table("annonces", sa.column("origin"), sa.column("uid"))
    codes = sa.table("short_codes", sa.column("origin"), sa.column("uid"), sa.column("code"))
    after = None
    while True:
        query = sa.select(annonces.c.origin, annonces.c.uid).order_by(
            annonces.c.origin, annonces.c.uid
        ).limit(BATCH)
        if after is not None:
            query = query.where(sa.tuple_(annonces.c.origin, annonces.c.uid) > sa.tuple_(*after))
        rows = conn.execute(query).all()
        if not rows:
            return
        conn.execute(codes.insert(), [
            {"origin": origin, "uid": uid, "code": short_code(origin, uid)}
            for origin, uid in rows
        ])  # fmt: skip
        after = rows[-1]


def downgrade() -> None:
    op.drop_index("ix_short_codes_code", table_name="short_codes")
    op.drop_table("short_codes")
