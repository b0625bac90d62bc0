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
    ForeignKey,
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
    # Added by migration 0006: the operator's reason and when, while hidden.
    Column("hidden_reason", Text),
    Column("hidden_at", BigInteger),
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
    # Added by migration 0002: the last anti-entropy pass. (The delivery state
    # that 0002 also put here moved to ``destinations`` in 0008.)
    Column("last_sync", BigInteger),
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
    # Added by migration 0009: the private name a member logs in with (the
    # handle is public: it travels with every annonce).
    Column("login", String(64), nullable=False),
    Column("display_name", Text, nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("state", String(16), nullable=False, server_default="active"),
    Column("created_at", BigInteger, nullable=False),
    UniqueConstraint("login", name="uq_members_login"),
)

# --- Residents (migration 0003) ---------------------------------------------

# Searches by distance and by commune (see storage/search.py).
Index("ix_annonces_lat_lon", annonces.c.lat, annonces.c.lon)
Index("ix_annonces_commune_created", annonces.c.commune, annonces.c.created)

# A member's profile; home and work are each a commune or a coarse point.
profiles = Table(
    "profiles",
    metadata,
    Column("member_id", Integer, ForeignKey("members.id", ondelete="CASCADE"), primary_key=True),
    Column("presentation", Text, nullable=False, server_default=""),
    Column("skills", Text, nullable=False, server_default=""),
    Column("home_commune", String(5)),
    Column("home_lat", Integer),
    Column("home_lon", Integer),
    Column("work_commune", String(5)),
    Column("work_lat", Integer),
    Column("work_lon", Integer),
    Column("updated_at", BigInteger, nullable=False),
)

# Web sessions: only a hash of the cookie's token is stored.
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("token_hash", LargeBinary(32), primary_key=True),
    Column("member_id", Integer, ForeignKey("members.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Index("ix_web_sessions_member", "member_id"),
)

# Failed logins per account and per address, in a fixed window.
login_throttle = Table(
    "login_throttle",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("window_start", BigInteger, nullable=False),
)

# Which member wrote which of this node's annonces.
member_annonces = Table(
    "member_annonces",
    metadata,
    Column("uid", LargeBinary(16), primary_key=True),
    Column("member_id", Integer, ForeignKey("members.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_member_annonces_member", "member_id", "created_at"),
)

# A private conversation about one annonce, between its author and a replier,
# either of whom may be a member of another node (then *_member_id is NULL).
conversations = Table(
    "conversations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", LargeBinary(16), nullable=False, unique=True),
    Column("annonce_origin", LargeBinary(32), nullable=False),
    Column("annonce_uid", LargeBinary(16), nullable=False),
    Column("annonce_title", Text, nullable=False),
    Column("author_node", LargeBinary(32), nullable=False),
    Column("author_handle", String(32), nullable=False),
    Column("author_name", Text, nullable=False),
    Column("author_member_id", Integer, ForeignKey("members.id", ondelete="CASCADE")),
    Column("replier_node", LargeBinary(32), nullable=False),
    Column("replier_handle", String(32), nullable=False),
    Column("replier_name", Text, nullable=False),
    Column("replier_member_id", Integer, ForeignKey("members.id", ondelete="CASCADE")),
    Column("author_read", Integer, nullable=False, server_default="0"),
    Column("replier_read", Integer, nullable=False, server_default="0"),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    UniqueConstraint("annonce_origin", "annonce_uid", "replier_node", "replier_handle",
                     name="uq_conversations_annonce_replier"),
    Index("ix_conversations_author", "author_member_id", "updated_at"),
    Index("ix_conversations_replier", "replier_member_id", "updated_at"),
)

messages = Table(
    "messages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", LargeBinary(16), nullable=False, unique=True),
    Column("conversation_id", Integer, ForeignKey("conversations.id", ondelete="CASCADE"),
           nullable=False),
    Column("from_author", Boolean, nullable=False),
    Column("body", Text, nullable=False),
    Column("sent_at", BigInteger, nullable=False),
    # Added by migration 0005: NULL, or pending / delivered / refused for a
    # message to a member of another node.
    Column("delivery", String(16)),
    Index("ix_messages_conversation", "conversation_id", "id"),
)

# Residents' reports of an annonce, for the node's moderators.
reports = Table(
    "reports",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("annonce_origin", LargeBinary(32), nullable=False),
    Column("annonce_uid", LargeBinary(16), nullable=False),
    Column("annonce_title", Text, nullable=False),
    Column("member_id", Integer, ForeignKey("members.id", ondelete="SET NULL")),
    Column("reason", String(32), nullable=False),
    Column("details", Text, nullable=False, server_default=""),
    Column("state", String(16), nullable=False, server_default="open"),
    Column("created_at", BigInteger, nullable=False),
    # Added by migration 0007. ``from_node``: the node that forwarded the
    # report (NULL for a resident's of this node); ``report_key``: the id both
    # nodes give a forwarded report, so that it is stored once; ``note`` and
    # ``handled_at``: the operator's note, and when it was resolved or forwarded.
    Column("from_node", LargeBinary(32)),
    Column("report_key", LargeBinary(16)),
    Column("note", Text),
    Column("handled_at", BigInteger),
    # Added by migration 0008: NULL, or pending / delivered / refused once the
    # operator forwarded the report to the annonce's origin.
    Column("delivery", String(16)),
    Index("ix_reports_state_created", "state", "created_at"),
    Index("uq_reports_from_node_key", "from_node", "report_key", unique=True),
)

# --- Everything this node sends other nodes (migration 0008) -------------------

# The one durable queue: an item for one destination node, of one kind
# (node/courier.py lists the kinds: an annonce to offer a peer, a private
# message, a forwarded report). ``item_key`` is what the item is about (an
# annonce id, a message or report key), unique per destination and kind, so
# queueing it twice keeps one row; ``body`` is the exact request body for the
# kinds sent as they were written (NULL for annonces, whose current envelope
# is read when they go). Rows are delivered in ``id`` order.
outbox_items = Table(
    "outbox_items",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("destination", LargeBinary(32), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("item_key", LargeBinary(32), nullable=False),
    Column("body", LargeBinary),
    Column("enqueued_at", BigInteger, nullable=False),
    Column("tries", Integer, nullable=False, server_default="0"),
    UniqueConstraint("destination", "kind", "item_key", name="uq_outbox_items_item"),
    Index("ix_outbox_items_destination", "destination", "kind", "id"),
)

# Each destination node's delivery state, whatever is sent to it: the
# failures in a row, when to try again, and whether its circuit is open.
destinations = Table(
    "destinations",
    metadata,
    Column("node_id", LargeBinary(32), primary_key=True),
    Column("state", String(16), nullable=False, server_default="active"),
    Column("failures", Integer, nullable=False, server_default="0"),
    Column("next_try", BigInteger),
    Column("last_error", Text),
    Column("last_contact", BigInteger),
)

# Signed requests accepted, by a hash of their key id and nonce, until their
# window has passed (migration 0009): a replay is refused after a restart too.
replay_nonces = Table(
    "replay_nonces",
    metadata,
    Column("key", LargeBinary(32), primary_key=True),
    Column("expires_at", BigInteger, nullable=False),
    Index("ix_replay_nonces_expires", "expires_at"),
)

# Forms submitted once (migration 0010): each token a member's form carried,
# the values of an annonce shown for preview (``draft``, JSON), and what the
# submission produced (``result``: NULL until it ran), so that the same form
# sent twice acts once (storage/forms.py).
form_submissions = Table(
    "form_submissions",
    metadata,
    Column("member_id", Integer, ForeignKey("members.id", ondelete="CASCADE"), primary_key=True),
    Column("token", LargeBinary(16), primary_key=True),
    Column("draft", Text),
    Column("result", Text),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_form_submissions_created", "created_at"),
)

# --- The directory of nodes (migration 0011) ------------------------------------

# The newest signed document of every node known (storage/directory.py): its
# exact text and signature, served again unchanged, and what pages and the
# courier read of it. ``recovery`` is fixed by the first document that names
# one; ``url_checked`` is the URL found to serve the node's own key.
nodes = Table(
    "nodes",
    metadata,
    Column("node_id", LargeBinary(32), primary_key=True),
    Column("name", Text, nullable=False),
    Column("url", Text, nullable=False),
    Column("area", Text, nullable=False),
    Column("issued", BigInteger, nullable=False),
    Column("recovery", LargeBinary(32)),
    Column("document", Text, nullable=False),
    Column("signature", Text, nullable=False),
    Column("record_id", LargeBinary(32), nullable=False),
    Column("received_at", BigInteger, nullable=False),
    Column("source", LargeBinary(32)),
    Column("url_checked", Text),
)

# The key succession that stands for each old node id (protocol/succession.py).
successions = Table(
    "successions",
    metadata,
    Column("old", LargeBinary(32), primary_key=True),
    Column("new", LargeBinary(32)),
    Column("issued", BigInteger, nullable=False),
    Column("by", String(16), nullable=False),
    Column("envelope", LargeBinary, nullable=False),
    Column("record_id", LargeBinary(32), nullable=False),
    Column("received_at", BigInteger, nullable=False),
    Index("ix_successions_new", "new"),
)

# Nodes the operator refuses point-to-point requests from (messages, reports).
refused_nodes = Table(
    "refused_nodes",
    metadata,
    Column("node_id", LargeBinary(32), primary_key=True),
    Column("reason", Text, nullable=False, server_default=""),
    Column("refused_at", BigInteger, nullable=False),
)

# --- Being told (migration 0012) --------------------------------------------------

# A member's e-mail address, never shown and never sent to another node;
# ``confirmed_at`` is NULL until the member followed the link mailed to it.
member_emails = Table(
    "member_emails",
    metadata,
    Column("member_id", Integer, ForeignKey("members.id", ondelete="CASCADE"), primary_key=True),
    Column("address", Text, nullable=False),
    Column("confirmed_at", BigInteger),
    Column("updated_at", BigInteger, nullable=False),
    # The relay refused the address for good (a 5xx): nothing more is mailed to it.
    Column("refused_at", BigInteger),
    UniqueConstraint("address", name="uq_member_emails_address"),
)

# Single-use tokens mailed to a member: confirming an address, resetting a
# password. Only a hash is kept; ``used_at`` is set by the one use.
mail_tokens = Table(
    "mail_tokens",
    metadata,
    Column("token_hash", LargeBinary(32), primary_key=True),
    Column("purpose", String(16), nullable=False),
    Column("member_id", Integer, ForeignKey("members.id", ondelete="CASCADE"), nullable=False),
    Column("address", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("used_at", BigInteger),
    Index("ix_mail_tokens_expires", "expires_at"),
)

# How often a member wants to be mailed each kind of notification
# (node/notifications.py holds the kinds and defaults; no row: the default).
mail_preferences = Table(
    "mail_preferences",
    metadata,
    Column("member_id", Integer, ForeignKey("members.id", ondelete="CASCADE"), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("cadence", String(16), nullable=False),
)

# A member's other choices about being told: the message text in mails,
# the distance for offers matching requests; when the last summary of each
# cadence and the last digest went.
notice_settings = Table(
    "notice_settings",
    metadata,
    Column("member_id", Integer, ForeignKey("members.id", ondelete="CASCADE"), primary_key=True),
    Column("message_text", Boolean, nullable=False, server_default="0"),
    Column("match_km", Integer, nullable=False, server_default="5"),
    Column("last_daily_at", BigInteger),
    Column("last_weekly_at", BigInteger),
    Column("last_digest_at", BigInteger),
)

# What a member is told, in the web view and, by their choice, by mail.
# ``key`` makes each notification once per member (an annonce alerts once,
# whatever its revisions); ``mail`` is WAITING until mailed or skipped.
notifications = Table(
    "notifications",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("member_id", Integer, ForeignKey("members.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("key", LargeBinary(32), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("data", Text, nullable=False),
    Column("read_at", BigInteger),
    Column("mail", String(16), nullable=False),
    UniqueConstraint("member_id", "kind", "key", name="uq_notifications_key"),
    Index("ix_notifications_member", "member_id", "id"),
    Index("ix_notifications_mail", "mail", "member_id"),
)

# Searches members saved to be told of new annonces that fit them.
saved_searches = Table(
    "saved_searches",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("member_id", Integer, ForeignKey("members.id", ondelete="CASCADE"), nullable=False),
    Column("words", Text, nullable=False, server_default=""),
    Column("kind", String(16)),
    Column("category", String(16)),
    Column("around", String(16)),
    Column("radius_km", Integer),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_saved_searches_member", "member_id"),
)

# Secrets this node keeps for itself (the key of the links it mails).
node_secrets = Table(
    "node_secrets",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", LargeBinary, nullable=False),
)

# --- Safety (migration 0016) ------------------------------------------------

# Blocks between members: the member (blocker_node, blocker_handle) blocked
# (blocked_node, blocked_handle). One of the two is a member of this node: a
# row whose blocker is ours was decided here; one whose blocker is another
# node's came in a block notice from that node (docs/protocol-safety.md).
# ``blocked_name`` is the name the blocker saw, for their list.
member_blocks = Table(
    "member_blocks",
    metadata,
    Column("blocker_node", LargeBinary(32), primary_key=True),
    Column("blocker_handle", String(32), primary_key=True),
    Column("blocked_node", LargeBinary(32), primary_key=True),
    Column("blocked_handle", String(32), primary_key=True),
    Column("blocked_name", Text, nullable=False, server_default=""),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_member_blocks_blocked", "blocked_node", "blocked_handle"),
)

# A report of a private message: the report (reports, about the
# conversation's annonce) and the message's text as it was, kept for the
# node's moderators only; such a report never leaves this node.
message_reports = Table(
    "message_reports",
    metadata,
    Column("report_id", Integer, ForeignKey("reports.id", ondelete="CASCADE"), primary_key=True),
    Column("conversation_id", Integer, ForeignKey("conversations.id", ondelete="SET NULL")),
    Column("message_key", LargeBinary(16), nullable=False),
    Column("message_text", Text, nullable=False),
    Column("sender_handle", String(32), nullable=False),
    Column("sender_node", LargeBinary(32), nullable=False),
)

# --- The association's desk (migration 0013) -------------------------------------

# Members the operator made coordinators: they act at the desk for accompanied members.
desk_coordinators = Table(
    "desk_coordinators",
    metadata,
    Column("member_id", Integer, ForeignKey("members.id", ondelete="CASCADE"), primary_key=True),
    Column("granted_at", BigInteger, nullable=False),
)

# Accompanied members: a member row without e-mail nor usable password, how the
# association reaches them (``reach``: phone or desk; ``phone`` stays on this
# node), the resident's consent as recorded, and, once they took over their
# account, when (``ended_at``). ``code_hash``: the SHA-256 of the one-time
# takeover code, until it is used or replaced.
desk_members = Table(
    "desk_members",
    metadata,
    Column("member_id", Integer, ForeignKey("members.id", ondelete="CASCADE"), primary_key=True),
    Column("reach", String(16), nullable=False),
    Column("phone", String(32)),
    Column("consent_at", BigInteger, nullable=False),
    Column("consent_by", Integer, ForeignKey("members.id", ondelete="SET NULL")),
    Column("created_at", BigInteger, nullable=False),
    Column("ended_at", BigInteger),
    Column("code_hash", LargeBinary(32)),
    Column("code_expires_at", BigInteger),
    Index("uq_desk_members_code", "code_hash", unique=True),
)

# Which coordinators accompany which accompanied member.
desk_accompaniers = Table(
    "desk_accompaniers",
    metadata,
    Column("member_id", Integer, ForeignKey("desk_members.member_id", ondelete="CASCADE"),
           primary_key=True),
    Column("coordinator_id", Integer, ForeignKey("members.id", ondelete="CASCADE"),
           primary_key=True),
    Column("added_at", BigInteger, nullable=False),
    Index("ix_desk_accompaniers_coordinator", "coordinator_id"),
)

# What coordinators did for accompanied members: the member's history.
desk_actions = Table(
    "desk_actions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("coordinator_id", Integer, ForeignKey("members.id", ondelete="SET NULL")),
    Column("member_id", Integer, ForeignKey("members.id", ondelete="CASCADE"), nullable=False),
    Column("action", String(16), nullable=False),
    Column("annonce_uid", LargeBinary(16)),
    Column("conversation_id", Integer, ForeignKey("conversations.id", ondelete="SET NULL")),
    Column("at", BigInteger, nullable=False),
    Index("ix_desk_actions_member", "member_id", "id"),
    Index("ix_desk_actions_annonce", "annonce_uid"),
)

# Messages written at an association's desk for an accompanied member: by one
# of our coordinators, or (``coordinator_id`` NULL) at another node's desk.
desk_messages = Table(
    "desk_messages",
    metadata,
    Column("message_id", Integer, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
    Column("coordinator_id", Integer, ForeignKey("members.id", ondelete="SET NULL")),
)

# Replies to accompanied members that a coordinator called back, by whom and when.
desk_callbacks = Table(
    "desk_callbacks",
    metadata,
    Column("message_id", Integer, ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
    Column("coordinator_id", Integer, ForeignKey("members.id", ondelete="SET NULL")),
    Column("at", BigInteger, nullable=False),
)

# --- Residents' rights (migration 0017) -------------------------------------------

# The handles of deleted accounts, never given again: a message meant for the
# old member must never reach a new one (storage.residents.handle_taken). Their
# ids are not given again either (SQLite would reuse the highest one), since
# links mailed to the old member name it (storage.residents.create_member).
retired_handles = Table(
    "retired_handles",
    metadata,
    Column("handle", String(32), primary_key=True),
    Column("member_id", Integer, nullable=False),
    Column("retired_at", BigInteger, nullable=False),
)

# When a party of a conversation left (their account deleted, on this node or
# on theirs, node/erasure.py): that side's name is emptied and shown as
# « ancien membre », their messages' bodies are emptied (shown as « message
# supprimé »: a message is never empty otherwise), and nobody writes to them.
conversations.append_column(Column("author_left_at", BigInteger))
conversations.append_column(Column("replier_left_at", BigInteger))

# --- Thanks without money (migration 0015) ----------------------------------------

# Who helped: an exchange between the two members of one conversation, stated by
# the annonce's node when its author marks it fulfilled, one per annonce.
# ``statement`` and ``signature`` are the author's node's signed statement
# (protocol.thanks) and ``ack`` the other node's signature over it; both are
# NULL when both members are of this node. ``confirmed``: both nodes hold it.
thanks_exchanges = Table(
    "thanks_exchanges",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("conversation_key", LargeBinary(16), nullable=False, unique=True),
    Column("annonce_origin", LargeBinary(32), nullable=False),
    Column("annonce_uid", LargeBinary(16), nullable=False),
    Column("annonce_title", Text, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("author_node", LargeBinary(32), nullable=False),
    Column("author_handle", String(32), nullable=False),
    Column("author_name", Text, nullable=False),
    Column("author_member_id", Integer, ForeignKey("members.id", ondelete="SET NULL")),
    Column("other_node", LargeBinary(32), nullable=False),
    Column("other_handle", String(32), nullable=False),
    Column("other_name", Text, nullable=False),
    Column("other_member_id", Integer, ForeignKey("members.id", ondelete="SET NULL")),
    Column("created_at", BigInteger, nullable=False),
    Column("statement", LargeBinary),
    Column("signature", LargeBinary(64)),
    Column("ack", LargeBinary(64)),
    Column("confirmed", Boolean, nullable=False, server_default="0"),
    UniqueConstraint("annonce_origin", "annonce_uid", name="uq_thanks_exchanges_annonce"),
    Index("ix_thanks_exchanges_author", "author_node", "author_handle"),
    Index("ix_thanks_exchanges_other", "other_node", "other_handle"),
)

# Each side's one « merci » for an exchange. ``statement`` and ``signature``:
# the writer's node's signed merci, when it travels (kept as it came); ``delivery``
# tells the writer where one for another node stands.
thanks_mercis = Table(
    "thanks_mercis",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("exchange_id", Integer, ForeignKey("thanks_exchanges.id", ondelete="CASCADE"),
           nullable=False),  # fmt: skip
    Column("from_author", Boolean, nullable=False),
    Column("text", Text, nullable=False),
    Column("written_at", BigInteger, nullable=False),
    Column("statement", LargeBinary),
    Column("signature", LargeBinary(64)),
    Column("delivery", String(16)),
    UniqueConstraint("exchange_id", "from_author", name="uq_thanks_mercis_side"),
)

# --- The printed sheet (migration 0014) -------------------------------------------

from sqlalchemy import ForeignKeyConstraint  # noqa: E402 - this section's own import

# The short code of every annonce held (protocol/short_code.py), written in
# the unit that first stores the annonce (storage/short_codes.py) and gone
# with it: the foreign key deletes it with the annonce (purge, blocked
# origin, key succession). ``/ref`` finds an annonce by its code through the index.
short_codes = Table(
    "short_codes",
    metadata,
    Column("origin", LargeBinary(32), primary_key=True),
    Column("uid", LargeBinary(16), primary_key=True),
    Column("code", String(8), nullable=False),
    ForeignKeyConstraint(["origin", "uid"], ["annonces.origin", "annonces.uid"],
                         ondelete="CASCADE", name="fk_short_codes_annonce"),
    Index("ix_short_codes_code", "code"),
)

# --- Photos of annonces (migration 0018) -------------------------------------------

# The current revision's photos as its body has them (msgpack: a list of
# [sha256, size, width, height, alt]); NULL when it has none.
annonces.append_column(Column("photos", LargeBinary))

# Which held annonce names which photo: replaced with each revision stored
# (storage/photos.py), gone with the annonce (purge, blocked origin). A photo
# no annonce names is neither served nor kept.
annonce_photos = Table(
    "annonce_photos",
    metadata,
    Column("origin", LargeBinary(32), primary_key=True),
    Column("uid", LargeBinary(16), primary_key=True),
    Column("rank", Integer, primary_key=True),
    Column("sha256", LargeBinary(32), nullable=False),
    Column("size", Integer, nullable=False),
    ForeignKeyConstraint(["origin", "uid"], ["annonces.origin", "annonces.uid"],
                         ondelete="CASCADE", name="fk_annonce_photos_annonce"),
    Index("ix_annonce_photos_sha256", "sha256"),
)

# The photo files held under DATA/photos (node/photo_files.py): ``own`` for a
# photo uploaded here (kept while an annonce names it, or a day for an upload
# not yet published), else a cached copy, evicted least recently viewed first.
# ``size`` and ``card_size``: the bytes of the full photo and of its card.
photo_files = Table(
    "photo_files",
    metadata,
    Column("sha256", LargeBinary(32), primary_key=True),
    Column("own", Boolean, nullable=False),
    Column("size", Integer, nullable=False),
    Column("card_size", Integer, nullable=False),
    Column("stored_at", BigInteger, nullable=False),
    Column("viewed_at", BigInteger, nullable=False),
    Index("ix_photo_files_own_viewed", "own", "viewed_at"),
)
