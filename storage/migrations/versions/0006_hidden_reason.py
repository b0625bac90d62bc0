"""Moderation: why and when the operator hid an annonce.

``annonces.hidden_reason`` and ``annonces.hidden_at`` are NULL unless the
annonce is hidden; like ``hidden``, a new revision leaves them as they are.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("annonces") as batch:
        batch.add_column(sa.Column("hidden_reason", sa.Text))
        batch.add_column(sa.Column("hidden_at", sa.BigInteger))


def downgrade() -> None:
    with op.batch_alter_table("annonces") as batch:
        batch.drop_column("hidden_at")
        batch.drop_column("hidden_reason")
