"""Private messages across nodes: where each delivery stands.

``messages.delivery`` is NULL for a message that needs no delivery (both
members on this node, or received from another node), else ``pending``,
``delivered`` or ``refused``; ``message_outbox.message_key`` ties a queued
delivery to its message.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("delivery", sa.String(16)))
    with op.batch_alter_table("message_outbox") as batch:
        batch.add_column(sa.Column("message_key", sa.LargeBinary(16)))


def downgrade() -> None:
    with op.batch_alter_table("message_outbox") as batch:
        batch.drop_column("message_key")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("delivery")
