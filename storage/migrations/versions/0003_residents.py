"""Residents: profiles, sessions, login throttle, authorship, conversations,
messages and their outbox, reports, and the search index.

Search: on SQLite a contentless FTS5 table ``annonces_fts`` whose rowid is the
annonce's *document number* (see storage/search.py), filled from the existing
rows here and kept up to date per ingested batch by storage/annonces.py; on
PostgreSQL a GIN index over ``to_tsvector('troc_french', troc_fold(...))``,
where ``troc_french`` is the French configuration and ``troc_fold`` an
immutable accent folding (``unaccent`` when the extension can be created, a
``translate`` of the French accented letters otherwise).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Kept in step with storage/search.py (DOC_SHIFT, DOC_EPOCH, FTS_TOKENIZER).
DOC_SHIFT = 30
DOC_EPOCH = 1_735_689_600
FTS_TOKENIZER = "unicode61 remove_diacritics 2"

ACCENTED = "àâäáãåçéèêëíìîïñóòôöõúùûüýÿæœ"
PLAIN = "aaaaaaceeeeiiiinooooouuuuyyeo"


def upgrade() -> None:
    op.create_table(
        "profiles",
        sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("presentation", sa.Text, nullable=False, server_default=""),
        sa.Column("skills", sa.Text, nullable=False, server_default=""),
        sa.Column("home_commune", sa.String(5)),
        sa.Column("home_lat", sa.Integer),
        sa.Column("home_lon", sa.Integer),
        sa.Column("work_commune", sa.String(5)),
        sa.Column("work_lat", sa.Integer),
        sa.Column("work_lon", sa.Integer),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "web_sessions",
        sa.Column("token_hash", sa.LargeBinary(32), primary_key=True),
        sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_web_sessions_member", "web_sessions", ["member_id"])
    op.create_table(
        "login_throttle",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("window_start", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "member_annonces",
        sa.Column("uid", sa.LargeBinary(16), primary_key=True),
        sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_member_annonces_member", "member_annonces", ["member_id", "created_at"])
    op.create_table(
        "conversations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.LargeBinary(16), nullable=False, unique=True),
        sa.Column("annonce_origin", sa.LargeBinary(32), nullable=False),
        sa.Column("annonce_uid", sa.LargeBinary(16), nullable=False),
        sa.Column("annonce_title", sa.Text, nullable=False),
        sa.Column("author_node", sa.LargeBinary(32), nullable=False),
        sa.Column("author_handle", sa.String(32), nullable=False),
        sa.Column("author_name", sa.Text, nullable=False),
        sa.Column("author_member_id", sa.Integer,
                  sa.ForeignKey("members.id", ondelete="CASCADE")),
        sa.Column("replier_node", sa.LargeBinary(32), nullable=False),
        sa.Column("replier_handle", sa.String(32), nullable=False),
        sa.Column("replier_name", sa.Text, nullable=False),
        sa.Column("replier_member_id", sa.Integer,
                  sa.ForeignKey("members.id", ondelete="CASCADE")),
        sa.Column("author_read", sa.Integer, nullable=False, server_default="0"),
        sa.Column("replier_read", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("annonce_origin", "annonce_uid", "replier_node", "replier_handle",
                            name="uq_conversations_annonce_replier"),
    )
    op.create_index("ix_conversations_author", "conversations",
                    ["author_member_id", "updated_at"])
    op.create_index("ix_conversations_replier", "conversations",
                    ["replier_member_id", "updated_at"])
    op.create_table(
        "messages",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.LargeBinary(16), nullable=False, unique=True),
        sa.Column("conversation_id", sa.Integer,
                  sa.ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False),
        sa.Column("from_author", sa.Boolean, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("sent_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_messages_conversation", "messages", ["conversation_id", "id"])
    op.create_table(
        "message_outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("peer", sa.LargeBinary(32), nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("tries", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_try", sa.BigInteger, nullable=False),
        sa.Column("last_error", sa.Text),
    )
    op.create_index("ix_message_outbox_next_try", "message_outbox", ["next_try"])
    op.create_table(
        "reports",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("annonce_origin", sa.LargeBinary(32), nullable=False),
        sa.Column("annonce_uid", sa.LargeBinary(16), nullable=False),
        sa.Column("annonce_title", sa.Text, nullable=False),
        sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id", ondelete="SET NULL")),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("details", sa.Text, nullable=False, server_default=""),
        sa.Column("state", sa.String(16), nullable=False, server_default="open"),
        sa.Column("created_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_reports_state_created", "reports", ["state", "created_at"])
    # Distance and commune searches over the annonces.
    op.create_index("ix_annonces_lat_lon", "annonces", ["lat", "lon"])
    op.create_index("ix_annonces_commune_created", "annonces", ["commune", "created"])
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_search_index()
    else:
        _postgres_search_index()


def _sqlite_search_index() -> None:
    op.execute(
        "CREATE VIRTUAL TABLE annonces_fts USING fts5("
        f"title, text, content='', tokenize='{FTS_TOKENIZER}', detail=column)"
    )
    op.execute(
        "INSERT INTO annonces_fts(rowid, title, text) "
        f"SELECT ((created - {DOC_EPOCH}) << {DOC_SHIFT}) | (rowid & ((1 << {DOC_SHIFT}) - 1)),"
        " title, text FROM annonces WHERE state != 'withdrawn'"
    )


def _postgres_search_index() -> None:
    bind = op.get_bind()
    has_unaccent = False
    savepoint = bind.begin_nested()
    try:
        bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS unaccent")
        savepoint.commit()
        has_unaccent = True
    except sa.exc.DBAPIError:
        savepoint.rollback()
    if has_unaccent:
        body = "SELECT lower(public.unaccent('public.unaccent'::regdictionary, $1))"
    else:
        body = f"SELECT translate(lower($1), '{ACCENTED}', '{PLAIN}')"
    op.execute(
        "CREATE OR REPLACE FUNCTION troc_fold(text) RETURNS text "
        f"LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS $$ {body} $$"
    )
    op.execute("CREATE TEXT SEARCH CONFIGURATION troc_french (COPY = pg_catalog.french)")
    op.execute(
        "CREATE INDEX ix_annonces_search ON annonces USING gin ("
        "to_tsvector('troc_french'::regconfig, troc_fold(title || ' ' || text)))"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE IF EXISTS annonces_fts")
    else:
        op.execute("DROP INDEX IF EXISTS ix_annonces_search")
        op.execute("DROP TEXT SEARCH CONFIGURATION IF EXISTS troc_french")
        op.execute("DROP FUNCTION IF EXISTS troc_fold(text)")
    op.drop_index("ix_annonces_commune_created", "annonces")
    op.drop_index("ix_annonces_lat_lon", "annonces")
    for table in ("reports", "message_outbox", "messages", "conversations",
                  "member_annonces", "login_throttle", "web_sessions", "profiles"):
        op.drop_table(table)
