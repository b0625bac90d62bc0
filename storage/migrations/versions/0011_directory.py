"""The directory of nodes, key successions, and the nodes an operator refuses.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "nodes",
        sa.Column("node_id", sa.LargeBinary(32), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("area", sa.Text, nullable=False),
        sa.Column("issued", sa.BigInteger, nullable=False),
        sa.Column("recovery", sa.LargeBinary(32)),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("signature", sa.Text, nullable=False),
        sa.Column("record_id", sa.LargeBinary(32), nullable=False),
        sa.Column("received_at", sa.BigInteger, nullable=False),
        sa.Column("source", sa.LargeBinary(32)),
        sa.Column("url_checked", sa.Text),
    )
    op.create_table(
        "successions",
        sa.Column("old", sa.LargeBinary(32), primary_key=True),
        sa.Column("new", sa.LargeBinary(32)),
        sa.Column("issued", sa.BigInteger, nullable=False),
        sa.Column("by", sa.String(16), nullable=False),
        sa.Column("envelope", sa.LargeBinary, nullable=False),
        sa.Column("record_id", sa.LargeBinary(32), nullable=False),
        sa.Column("received_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_successions_new", "successions", ["new"])
    op.create_table(
        "refused_nodes",
        sa.Column("node_id", sa.LargeBinary(32), primary_key=True),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("refused_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("refused_nodes")
    op.drop_index("ix_successions_new", table_name="successions")
    op.drop_table("successions")
    op.drop_table("nodes")
