"""Federation: the per-peer outbox and the peers' delivery state.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("peers") as batch:
        batch.add_column(sa.Column("next_try", sa.BigInteger))
        batch.add_column(sa.Column("last_sync", sa.BigInteger))
    op.create_table(
        "outbox",
        sa.Column(
            "peer_id",
            sa.LargeBinary(32),
            sa.ForeignKey("peers.node_id", ondelete="CASCADE", name="fk_outbox_peer"),
            primary_key=True,
        ),
        sa.Column("annonce_id", sa.LargeBinary(32), primary_key=True),
        sa.Column("enqueued_at", sa.BigInteger, nullable=False),
        sa.Column("tries", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_index("ix_outbox_peer_enqueued", "outbox", ["peer_id", "enqueued_at"])


def downgrade() -> None:
    op.drop_index("ix_outbox_peer_enqueued", table_name="outbox")
    op.drop_table("outbox")
    with op.batch_alter_table("peers") as batch:
        batch.drop_column("last_sync")
        batch.drop_column("next_try")
