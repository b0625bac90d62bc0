"""The association's desk: coordinators, accompanied members, actions recorded for them.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def _fk(table: str, ondelete: str = "CASCADE"):
    return sa.ForeignKey(table, ondelete=ondelete)


def upgrade() -> None:
    op.create_table(
        "desk_coordinators",
        sa.Column("member_id", sa.Integer, _fk("members.id"), primary_key=True),
        sa.Column("granted_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "desk_members",
        sa.Column("member_id", sa.Integer, _fk("members.id"), primary_key=True),
        sa.Column("reach", sa.String(16), nullable=False),
        sa.Column("phone", sa.String(32)),
        sa.Column("consent_at", sa.BigInteger, nullable=False),
        sa.Column("consent_by", sa.Integer, _fk("members.id", "SET NULL")),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("ended_at", sa.BigInteger),
        sa.Column("code_hash", sa.LargeBinary(32)),
        sa.Column("code_expires_at", sa.BigInteger),
    )
    op.create_index("uq_desk_members_code", "desk_members", ["code_hash"], unique=True)
    op.create_table(
        "desk_accompaniers",
        sa.Column("member_id", sa.Integer, _fk("desk_members.member_id"), primary_key=True),
        sa.Column("coordinator_id", sa.Integer, _fk("members.id"), primary_key=True),
        sa.Column("added_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_desk_accompaniers_coordinator", "desk_accompaniers", ["coordinator_id"])
    op.create_table(
        "desk_actions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("coordinator_id", sa.Integer, _fk("members.id", "SET NULL")),
        sa.Column("member_id", sa.Integer, _fk("members.id"), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("annonce_uid", sa.LargeBinary(16)),
        sa.Column("conversation_id", sa.Integer, _fk("conversations.id", "SET NULL")),
        sa.Column("at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_desk_actions_member", "desk_actions", ["member_id", "id"])
    op.create_index("ix_desk_actions_annonce", "desk_actions", ["annonce_uid"])
    op.create_table(
        "desk_messages",
        sa.Column("message_id", sa.Integer, _fk("messages.id"), primary_key=True),
        sa.Column("coordinator_id", sa.Integer, _fk("members.id", "SET NULL")),
    )
    op.create_table(
        "desk_callbacks",
        sa.Column("message_id", sa.Integer, _fk("messages.id"), primary_key=True),
        sa.Column("coordinator_id", sa.Integer, _fk("members.id", "SET NULL")),
        sa.Column("at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("desk_callbacks")
    op.drop_table("desk_messages")
    op.drop_index("ix_desk_actions_annonce", table_name="desk_actions")
    op.drop_index("ix_desk_actions_member", table_name="desk_actions")
    op.drop_table("desk_actions")
    op.drop_index("ix_desk_accompaniers_coordinator", table_name="desk_accompaniers")
    op.drop_table("desk_accompaniers")
    op.drop_index("uq_desk_members_code", table_name="desk_members")
    op.drop_table("desk_members")
    op.drop_table("desk_coordinators")
