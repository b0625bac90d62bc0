"""The database schema, as SQLAlchemy Core tables.

Times are Unix seconds in BIGINT columns and binary ids are raw bytes, so both
backends (SQLite and PostgreSQL) store the same values. The migrations under
``storage/migrations`` create these tables; a test checks they agree.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

# The node this database belongs to: one row, so a database cannot be started
# by another node's key by mistake.
node = Table(
    "node",
    metadata,
    Column("node_id", LargeBinary(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

# The current revision of every annonce this node holds (live or tombstone),
# with the exact signed bytes, so it can be served again unchanged.
annonces = Table(
    "annonces",
    metadata,
    Column("origin", LargeBinary(32), primary_key=True),
    Column("uid", LargeBinary(16), primary_key=True),
    Column("id", LargeBinary(32), nullable=False),
    Column("rev", Integer, nullable=False),
    Column("created", BigInteger, nullable=False),
    Column("updated", BigInteger, nullable=False),
    Column("expires", BigInteger, nullable=False),
    Column("state", String(16), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("category", String(16), nullable=False),
    Column("title", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("lang", String(8), nullable=False),
    Column("commune", String(5)),
    Column("lat", Integer),
    Column("lon", Integer),
    Column("author_handle", String(32), nullable=False),
    Column("author_name", Text, nullable=False),
    Column("sortie_at", BigInteger),
    Column("envelope", LargeBinary, nullable=False),
    Column("received_at", BigInteger, nullable=False),
    Column("source", LargeBinary(32)),
    Column("hidden", Boolean, nullable=False, server_default="0"),
    UniqueConstraint("id", name="uq_annonces_id"),
    Index("ix_annonces_expires", "expires"),
    Index("ix_annonces_updated_id", "updated", "id"),
    Index("ix_annonces_category_created", "category", "created"),
    Index("ix_annonces_created", "created"),
)

peers = Table(
    "peers",
    metadata,
    Column("node_id", LargeBinary(32), primary_key=True),
    Column("url", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("added_at", BigInteger, nullable=False),
    Column("state", String(16), nullable=False, server_default="active"),
    Column("last_contact", BigInteger),
    Column("last_error", Text),
    Column("failures", Integer, nullable=False, server_default="0"),
)

blocked_origins = Table(
    "blocked_origins",
    metadata,
    Column("origin", LargeBinary(32), primary_key=True),
    Column("reason", Text, nullable=False, server_default=""),
    Column("blocked_at", BigInteger, nullable=False),
)

members = Table(
    "members",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("handle", String(32), nullable=False, unique=True),
    Column("display_name", Text, nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("state", String(16), nullable=False, server_default="active"),
    Column("created_at", BigInteger, nullable=False),
)
