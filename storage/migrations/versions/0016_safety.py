"""Safety: blocks between members, reports of messages, posting limits of new accounts.

The posting limits of new accounts read what is there already (members'
``created_at``, ``member_annonces``, ``conversations``): they add no table.

Revision ID: 0016
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "member_blocks",
        sa.Column("blocker_node", sa.LargeBinary(32), primary_key=True),
        sa.Column("blocker_handle", sa.String(32), primary_key=True),
        sa.Column("blocked_node", sa.LargeBinary(32), primary_key=True),
        sa.Column("blocked_handle", sa.String(32), primary_key=True),
        sa.Column("blocked_name", sa.Text, nullable=False, server_default=""),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_member_blocks_blocked", "member_blocks", ["blocked_node", "blocked_handle"])
    op.create_table(
        "message_reports",
        sa.Column("report_id", sa.Integer, sa.ForeignKey("reports.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("conversation_id", sa.Integer,
                  sa.ForeignKey("conversations.id", ondelete="SET NULL")),
        sa.Column("message_key", sa.LargeBinary(16), nullable=False),
        sa.Column("message_text", sa.Text, nullable=False),
        sa.Column("sender_handle", sa.String(32), nullable=False),
        sa.Column("sender_node", sa.LargeBinary(32), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("message_reports")
    op.drop_index("ix_member_blocks_blocked", table_name="member_blocks")
    op.drop_table("member_blocks")
