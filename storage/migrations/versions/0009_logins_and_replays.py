"""Private login names, and the replay memory of signed requests.

``members.login`` is what a resident types to log in, known to them alone;
``members.handle`` stays the public name shown with their annonces on every
node. Members made before this migration keep logging in with their handle:
their login is set to it.

``replay_nonces`` remembers each signed request a node accepted (a hash of its
key id and nonce) until its signature's window has passed, so that a captured
request is refused after a restart too.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("members") as batch:
        batch.add_column(sa.Column("login", sa.String(64)))
    op.execute("UPDATE members SET login = handle")
    with op.batch_alter_table("members") as batch:
        batch.alter_column("login", existing_type=sa.String(64), nullable=False)
        batch.create_unique_constraint("uq_members_login", ["login"])
    op.create_table(
        "replay_nonces",
        sa.Column("key", sa.LargeBinary(32), primary_key=True),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_replay_nonces_expires", "replay_nonces", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_replay_nonces_expires", table_name="replay_nonces")
    op.drop_table("replay_nonces")
    with op.batch_alter_table("members") as batch:
        batch.drop_constraint("uq_members_login", type_="unique")
        batch.drop_column("login")
