"""Reports handled by operators, and forwarded between nodes.

``reports.from_node`` is the node that forwarded a report (NULL for a report
by a resident of this node); ``reports.report_key`` is the id both nodes give
a forwarded report, unique per forwarding node so that a report sent twice is
stored once; ``reports.note`` and ``reports.handled_at`` are the operator's
note and when the report was resolved or forwarded.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reports") as batch:
        batch.add_column(sa.Column("from_node", sa.LargeBinary(32)))
        batch.add_column(sa.Column("report_key", sa.LargeBinary(16)))
        batch.add_column(sa.Column("note", sa.Text))
        batch.add_column(sa.Column("handled_at", sa.BigInteger))
    op.create_index(
        "uq_reports_from_node_key", "reports", ["from_node", "report_key"], unique=True
    )


def downgrade() -> None:
    op.drop_index("uq_reports_from_node_key", table_name="reports")
    with op.batch_alter_table("reports") as batch:
        batch.drop_column("handled_at")
        batch.drop_column("note")
        batch.drop_column("report_key")
        batch.drop_column("from_node")
