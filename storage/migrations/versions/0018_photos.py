"""Photos of annonces: the record's photos on each annonce, which annonce names which
photo, and the photo files this node holds.

Revision ID: 0018
Revises: 0017
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("annonces", sa.Column("photos", sa.LargeBinary))
    op.create_table(
        "annonce_photos",
        sa.Column("origin", sa.LargeBinary(32), primary_key=True),
        sa.Column("uid", sa.LargeBinary(16), primary_key=True),
        sa.Column("rank", sa.Integer, primary_key=True),
        sa.Column("sha256", sa.LargeBinary(32), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.ForeignKeyConstraint(["origin", "uid"], ["annonces.origin", "annonces.uid"],
                                ondelete="CASCADE", name="fk_annonce_photos_annonce"),
    )
    op.create_index("ix_annonce_photos_sha256", "annonce_photos", ["sha256"])
    op.create_table(
        "photo_files",
        sa.Column("sha256", sa.LargeBinary(32), primary_key=True),
        sa.Column("own", sa.Boolean, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("card_size", sa.Integer, nullable=False),
        sa.Column("stored_at", sa.BigInteger, nullable=False),
        sa.Column("viewed_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_photo_files_own_viewed", "photo_files", ["own", "viewed_at"])


def downgrade() -> None:
    op.drop_index("ix_photo_files_own_viewed", "photo_files")
    op.drop_table("photo_files")
    op.drop_index("ix_annonce_photos_sha256", "annonce_photos")
    op.drop_table("annonce_photos")
    with op.batch_alter_table("annonces") as batch:
        batch.drop_column("photos")
