"""Residents' rights: retired handles, and the parties of a conversation who left.

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "retired_handles",
        sa.Column("handle", sa.String(32), primary_key=True),
        sa.Column("member_id", sa.Integer, nullable=False),
        sa.Column("retired_at", sa.BigInteger, nullable=False),
    )
    op.add_column("conversations", sa.Column("author_left_at", sa.BigInteger))
    op.add_column("conversations", sa.Column("replier_left_at", sa.BigInteger))


def downgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("replier_left_at")
        batch.drop_column("author_left_at")
    op.drop_table("retired_handles")
