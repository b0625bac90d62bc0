"""Foundation: the node, annonces, peers, blocked origins, members.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "node",
        sa.Column("node_id", sa.LargeBinary(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "annonces",
        sa.Column("origin", sa.LargeBinary(32), primary_key=True),
        sa.Column("uid", sa.LargeBinary(16), primary_key=True),
        sa.Column("id", sa.LargeBinary(32), nullable=False),
        sa.Column("rev", sa.Integer, nullable=False),
        sa.Column("created", sa.BigInteger, nullable=False),
        sa.Column("updated", sa.BigInteger, nullable=False),
        sa.Column("expires", sa.BigInteger, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("lang", sa.String(8), nullable=False),
        sa.Column("commune", sa.String(5)),
        sa.Column("lat", sa.Integer),
        sa.Column("lon", sa.Integer),
        sa.Column("author_handle", sa.String(32), nullable=False),
        sa.Column("author_name", sa.Text, nullable=False),
        sa.Column("sortie_at", sa.BigInteger),
        sa.Column("envelope", sa.LargeBinary, nullable=False),
        sa.Column("received_at", sa.BigInteger, nullable=False),
        sa.Column("source", sa.LargeBinary(32)),
        sa.Column("hidden", sa.Boolean, nullable=False, server_default="0"),
        sa.UniqueConstraint("id", name="uq_annonces_id"),
    )
    op.create_index("ix_annonces_expires", "annonces", ["expires"])
    op.create_index("ix_annonces_updated_id", "annonces", ["updated", "id"])
    op.create_index("ix_annonces_category_created", "annonces", ["category", "created"])
    op.create_index("ix_annonces_created", "annonces", ["created"])
    op.create_table(
        "peers",
        sa.Column("node_id", sa.LargeBinary(32), primary_key=True),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("added_at", sa.BigInteger, nullable=False),
        sa.Column("state", sa.String(16), nullable=False, server_default="active"),
        sa.Column("last_contact", sa.BigInteger),
        sa.Column("last_error", sa.Text),
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_table(
        "blocked_origins",
        sa.Column("origin", sa.LargeBinary(32), primary_key=True),
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("blocked_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "members",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("handle", sa.String(32), nullable=False, unique=True),
        sa.Column("display_name", sa.Text, nullable=False),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False, server_default="active"),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    for table in ("members", "blocked_origins", "peers", "annonces", "node"):
        op.drop_table(table)
