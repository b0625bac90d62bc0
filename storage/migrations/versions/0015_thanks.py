"""Thanks without money: who helped, and the « merci » of each side.

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def _member_fk():
    return sa.ForeignKey("members.id", ondelete="SET NULL")


def upgrade() -> None:
    op.create_table(
        "thanks_exchanges",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("conversation_key", sa.LargeBinary(16), nullable=False, unique=True),
        sa.Column("annonce_origin", sa.LargeBinary(32), nullable=False),
        sa.Column("annonce_uid", sa.LargeBinary(16), nullable=False),
        sa.Column("annonce_title", sa.Text, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("author_node", sa.LargeBinary(32), nullable=False),
        sa.Column("author_handle", sa.String(32), nullable=False),
        sa.Column("author_name", sa.Text, nullable=False),
        sa.Column("author_member_id", sa.Integer, _member_fk()),
        sa.Column("other_node", sa.LargeBinary(32), nullable=False),
        sa.Column("other_handle", sa.String(32), nullable=False),
        sa.Column("other_name", sa.Text, nullable=False),
        sa.Column("other_member_id", sa.Integer, _member_fk()),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("statement", sa.LargeBinary),
        sa.Column("signature", sa.LargeBinary(64)),
        sa.Column("ack", sa.LargeBinary(64)),
        sa.Column("confirmed", sa.Boolean, nullable=False, server_default="0"),
        sa.UniqueConstraint("annonce_origin", "annonce_uid", name="uq_thanks_exchanges_annonce"),
    )
    op.create_index("ix_thanks_exchanges_author", "thanks_exchanges",
                    ["author_node", "author_handle"])  # fmt: skip
    op.create_index("ix_thanks_exchanges_other", "thanks_exchanges",
                    ["other_node", "other_handle"])  # fmt: skip
    op.create_table(
        "thanks_mercis",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("exchange_id", sa.Integer,
                  sa.ForeignKey("thanks_exchanges.id", ondelete="CASCADE"), nullable=False),
        sa.Column("from_author", sa.Boolean, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("written_at", sa.BigInteger, nullable=False),
        sa.Column("statement", sa.LargeBinary),
        sa.Column("signature", sa.LargeBinary(64)),
        sa.Column("delivery", sa.String(16)),
        sa.UniqueConstraint("exchange_id", "from_author", name="uq_thanks_mercis_side"),
    )


def downgrade() -> None:
    op.drop_table("thanks_mercis")
    op.drop_index("ix_thanks_exchanges_other", table_name="thanks_exchanges")
    op.drop_index("ix_thanks_exchanges_author", table_name="thanks_exchanges")
    op.drop_table("thanks_exchanges")
