"""One durable queue for everything a node sends, and one delivery state per destination.

``outbox_items`` replaces the gossip ``outbox`` (its rows become items of
kind ``annonce``) and the ``message_outbox`` (items of kind ``message``, with
their exact bodies, in the same order). ``destinations`` takes the delivery
state that ``peers`` held (failures, back-off, circuit, last contact, last
error), so that any node this node sends to has one, peer or not.
``reports.delivery`` says where a forwarded report stands.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_DELIVERY_COLUMNS = ("state", "last_contact", "last_error", "failures", "next_try")


def upgrade() -> None:
    op.create_table(
        "outbox_items",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("destination", sa.LargeBinary(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("item_key", sa.LargeBinary(32), nullable=False),
        sa.Column("body", sa.LargeBinary),
        sa.Column("enqueued_at", sa.BigInteger, nullable=False),
        sa.Column("tries", sa.Integer, nullable=False, server_default="0"),
        sa.UniqueConstraint("destination", "kind", "item_key", name="uq_outbox_items_item"),
    )
    op.create_index(
        "ix_outbox_items_destination", "outbox_items", ["destination", "kind", "id"]
    )
    op.create_table(
        "destinations",
        sa.Column("node_id", sa.LargeBinary(32), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False, server_default="active"),
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_try", sa.BigInteger),
        sa.Column("last_error", sa.Text),
        sa.Column("last_contact", sa.BigInteger),
    )
    op.execute(
        "INSERT INTO destinations (node_id, state, failures, next_try, last_error, last_contact)"
        " SELECT node_id, state, failures, next_try, last_error, last_contact FROM peers"
    )
    op.execute(
        "INSERT INTO outbox_items (destination, kind, item_key, enqueued_at, tries)"
        " SELECT peer_id, 'annonce', annonce_id, enqueued_at, tries FROM outbox"
        " ORDER BY enqueued_at, annonce_id"
    )
    # Deliveries made before 0005 have no message key: their row id stands in.
    op.execute(
        "INSERT INTO outbox_items (destination, kind, item_key, body, enqueued_at, tries)"
        " SELECT peer, 'message', COALESCE(message_key, CAST(CAST(id AS VARCHAR(20)) AS "
        + ("BYTEA" if op.get_bind().dialect.name == "postgresql" else "BLOB") + ")),"
        " payload, created_at, tries FROM message_outbox ORDER BY id"
    )
    op.drop_index("ix_outbox_peer_enqueued", table_name="outbox")
    op.drop_table("outbox")
    op.drop_index("ix_message_outbox_next_try", table_name="message_outbox")
    op.drop_table("message_outbox")
    with op.batch_alter_table("peers") as batch:
        for name in _DELIVERY_COLUMNS:
            batch.drop_column(name)
    with op.batch_alter_table("reports") as batch:
        batch.add_column(sa.Column("delivery", sa.String(16)))


def downgrade() -> None:
    with op.batch_alter_table("reports") as batch:
        batch.drop_column("delivery")
    with op.batch_alter_table("peers") as batch:
        batch.add_column(sa.Column("state", sa.String(16), nullable=False,
                                   server_default="active"))  # fmt: skip
        batch.add_column(sa.Column("last_contact", sa.BigInteger))
        batch.add_column(sa.Column("last_error", sa.Text))
        batch.add_column(sa.Column("failures", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("next_try", sa.BigInteger))
    for name in _DELIVERY_COLUMNS:
        op.execute(
            f"UPDATE peers SET {name} = (SELECT d.{name} FROM destinations d"
            " WHERE d.node_id = peers.node_id)"
            " WHERE EXISTS (SELECT 1 FROM destinations d WHERE d.node_id = peers.node_id)"
        )
    op.create_table(
        "outbox",
        sa.Column("peer_id", sa.LargeBinary(32),
                  sa.ForeignKey("peers.node_id", ondelete="CASCADE", name="fk_outbox_peer"),
                  primary_key=True),
        sa.Column("annonce_id", sa.LargeBinary(32), primary_key=True),
        sa.Column("enqueued_at", sa.BigInteger, nullable=False),
        sa.Column("tries", sa.Integer, nullable=False, server_default="0"),
    )  # fmt: skip
    op.create_index("ix_outbox_peer_enqueued", "outbox", ["peer_id", "enqueued_at"])
    op.execute(
        "INSERT INTO outbox (peer_id, annonce_id, enqueued_at, tries)"
        " SELECT destination, item_key, enqueued_at, tries FROM outbox_items"
        " WHERE kind = 'annonce' AND destination IN (SELECT node_id FROM peers)"
    )
    op.create_table(
        "message_outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("peer", sa.LargeBinary(32), nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("tries", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_try", sa.BigInteger, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("message_key", sa.LargeBinary(16)),
    )
    op.create_index("ix_message_outbox_next_try", "message_outbox", ["next_try"])
    op.execute(
        "INSERT INTO message_outbox (peer, payload, created_at, tries, next_try, message_key)"
        " SELECT destination, body, enqueued_at, tries, enqueued_at, item_key FROM outbox_items"
        " WHERE kind = 'message' ORDER BY id"
    )
    op.drop_table("destinations")
    op.drop_index("ix_outbox_items_destination", table_name="outbox_items")
    op.drop_table("outbox_items")
