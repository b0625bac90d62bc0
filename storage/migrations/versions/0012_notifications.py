"""Being told: members' e-mail addresses, mailed tokens, notifications, saved searches.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def _member_fk():
    return sa.ForeignKey("members.id", ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "member_emails",
        sa.Column("member_id", sa.Integer, _member_fk(), primary_key=True),
        sa.Column("address", sa.Text, nullable=False),
        sa.Column("confirmed_at", sa.BigInteger),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.Column("refused_at", sa.BigInteger),
        sa.UniqueConstraint("address", name="uq_member_emails_address"),
    )
    op.create_table(
        "mail_tokens",
        sa.Column("token_hash", sa.LargeBinary(32), primary_key=True),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("member_id", sa.Integer, _member_fk(), nullable=False),
        sa.Column("address", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("used_at", sa.BigInteger),
    )
    op.create_index("ix_mail_tokens_expires", "mail_tokens", ["expires_at"])
    op.create_table(
        "mail_preferences",
        sa.Column("member_id", sa.Integer, _member_fk(), primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("cadence", sa.String(16), nullable=False),
    )
    op.create_table(
        "notice_settings",
        sa.Column("member_id", sa.Integer, _member_fk(), primary_key=True),
        sa.Column("message_text", sa.Boolean, nullable=False, server_default="0"),
        sa.Column("match_km", sa.Integer, nullable=False, server_default="5"),
        sa.Column("last_daily_at", sa.BigInteger),
        sa.Column("last_weekly_at", sa.BigInteger),
        sa.Column("last_digest_at", sa.BigInteger),
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("member_id", sa.Integer, _member_fk(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("key", sa.LargeBinary(32), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("read_at", sa.BigInteger),
        sa.Column("mail", sa.String(16), nullable=False),
        sa.UniqueConstraint("member_id", "kind", "key", name="uq_notifications_key"),
    )
    op.create_index("ix_notifications_member", "notifications", ["member_id", "id"])
    op.create_index("ix_notifications_mail", "notifications", ["mail", "member_id"])
    op.create_table(
        "saved_searches",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("member_id", sa.Integer, _member_fk(), nullable=False),
        sa.Column("words", sa.Text, nullable=False, server_default=""),
        sa.Column("kind", sa.String(16)),
        sa.Column("category", sa.String(16)),
        sa.Column("around", sa.String(16)),
        sa.Column("radius_km", sa.Integer),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_saved_searches_member", "saved_searches", ["member_id"])
    op.create_table(
        "node_secrets",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("value", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("node_secrets")
    op.drop_index("ix_saved_searches_member", table_name="saved_searches")
    op.drop_table("saved_searches")
    op.drop_index("ix_notifications_mail", table_name="notifications")
    op.drop_index("ix_notifications_member", table_name="notifications")
    op.drop_table("notifications")
    op.drop_table("notice_settings")
    op.drop_table("mail_preferences")
    op.drop_index("ix_mail_tokens_expires", table_name="mail_tokens")
    op.drop_table("mail_tokens")
    op.drop_table("member_emails")
