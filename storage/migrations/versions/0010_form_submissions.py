"""Forms submitted once: a resident's double click, or Back and send again, acts once.

Every form a resident sends to post, change or write something carries a
one-time token drawn when the page was shown. ``form_submissions`` remembers,
per member, each token that was used and what it produced (``result``: an
annonce's ref, a conversation's id), so that a second request with the same
token is led to the first one's result instead of acting again. ``draft``
keeps the values of an annonce shown for preview, which is a page of its own
(reached by a redirect after the POST, so that Back never asks to send again).

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "form_submissions",
        sa.Column("member_id", sa.Integer,
                  sa.ForeignKey("members.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("token", sa.LargeBinary(16), primary_key=True),
        sa.Column("draft", sa.Text),
        sa.Column("result", sa.Text),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )  # fmt: skip
    op.create_index("ix_form_submissions_created", "form_submissions", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_form_submissions_created", table_name="form_submissions")
    op.drop_table("form_submissions")
