"""Every limit of the Troc protocol, in one place.

Each constant here appears in docs/protocol.md with the same name and value;
tests/protocol/test_spec_limits.py checks that they agree.
"""

from __future__ import annotations

# --- Protocol ---------------------------------------------------------------
PROTOCOL_VERSION = 1

# --- Time -------------------------------------------------------------------
MAX_CLOCK_SKEW_S = 15 * 60            # a time at most this far ahead of ours
MAX_LIFETIME_S = 90 * 24 * 3600       # expires at most this long after `updated`
MIN_LIFETIME_S = 3600                 # expires at least this long after `updated`
MIN_TIMESTAMP = 1_735_689_600         # 2025-01-01T00:00:00Z: nothing older exists
MAX_TIMESTAMP = 2**32 - 1             # fits an unsigned 32-bit integer

# --- The annonce record -----------------------------------------------------
MAX_ENVELOPE_BYTES = 8 * 1024         # a whole signed annonce on the wire
ANNONCE_UID_BYTES = 16
MAX_TITLE_CHARS = 120
MIN_TITLE_CHARS = 3
MAX_TEXT_CHARS = 4000
MAX_HANDLE_CHARS = 32
MAX_DISPLAY_NAME_CHARS = 64
MAX_LANGUAGE_CHARS = 8
MAX_REVISION = 1_000_000
INSEE_CODE_CHARS = 5
POINT_SCALE = 100                     # coarse points are in hundredths of a degree
MAX_SORTIE_AHEAD_S = 365 * 24 * 3600  # a sortie takes place within a year
MAX_NODEDOC_CHARS = 4096              # the node document's JSON text
MAX_NODE_NAME_CHARS = 80

# --- Photos of an annonce (docs/protocol.md 3.7, docs/protocol-federation.md 12) ---
PHOTO_HASH_BYTES = 32                 # a photo's SHA-256
MAX_PHOTOS = 4                        # photos of one revision
MAX_PHOTO_ALT_CHARS = 200             # the description of one photo
MAX_PHOTO_BYTES = 1_500_000           # one photo file (JPEG, the kept size)
MAX_PHOTO_SIDE = 1600                 # a photo's width and height, in pixels

# --- Set reconciliation -----------------------------------------------------
# Wire constants: both sides must agree on these.
RECONCILE_VERSION = 1                      # first byte of every reconciliation message
RECONCILE_ID_BYTES = 32                    # an item id: SHA-256 of a signed annonce
RECONCILE_FINGERPRINT_BYTES = 16           # a range fingerprint: truncated SHA-256
RECONCILE_INFINITY_TS = 2**64 - 1          # timestamp of the bound above every item
RECONCILE_MAX_VARINT_BYTES = 10            # a LEB128 varint holds at most 64 bits
RECONCILE_MAX_MESSAGE_BYTES = 1024 * 1024  # one message, whoever sends it
RECONCILE_MAX_RANGES = 65_536              # ranges in one message
# Local tuning: each side picks its own, within these bounds.
RECONCILE_MIN_FRAME_BYTES = 4 * 1024       # smallest frame limit a side may choose
RECONCILE_DEFAULT_FRAME_BYTES = 128 * 1024 # our messages stay at or under this
RECONCILE_MIN_BUCKETS = 2
RECONCILE_MAX_BUCKETS = 64
RECONCILE_DEFAULT_BUCKETS = 16             # a differing range is split into this many
RECONCILE_MAX_ID_LIST_THRESHOLD = 1024
RECONCILE_DEFAULT_ID_LIST_THRESHOLD = 32   # under this many items: list them instead
RECONCILE_MAX_ROUNDS = 10_000              # round trips an initiator allows, then gives up

# --- Request signatures -----------------------------------------------------
REQUEST_SIGNATURE_WINDOW_S = 5 * 60   # |now - created| at most this; replays remembered as long
REQUEST_SIGNATURE_LIFETIME_S = 5 * 60 # expires - created, at most (signers use exactly this)
MAX_SIGNATURE_FIELD_CHARS = 4096      # Signature-Input, and Signature, all lines combined
MAX_CONTENT_DIGEST_CHARS = 1024       # Content-Digest, all lines combined
MAX_TARGET_URI_CHARS = 8192           # the target URI a signature base is built from
MAX_COVERED_COMPONENTS = 16           # components one signature may cover
MIN_NONCE_CHARS = 16                  # a nonce is base64url text of this many characters...
MAX_NONCE_CHARS = 64                  # ...to this many
REPLAY_GUARD_CAPACITY = 50_000        # (key id, nonce) pairs a replay guard remembers at once

# --- Federation -------------------------------------------------------------
FEDERATION_MAX_BODY_BYTES = 2 * 1024 * 1024  # a request or answer body of the federation API
FEDERATION_MAX_IDS = 4096                    # ids in one announce request
FEDERATION_MAX_ENVELOPES = 200               # envelopes in one push or fetch answer; ids in one fetch
FEDERATION_MAX_DETAIL_CHARS = 200            # the detail of one refused item in a push answer

# --- What one node may ask of another (the receiver's bounds) -------------------
PEER_MAX_CONCURRENT_REQUESTS = 4      # one node's requests in flight at once; more: 429
PEER_GOSSIP_RATE_PER_S = 10           # announce, push, fetch, reconcile, node: sustained, per node
PEER_GOSSIP_BURST = 100               # ...and at once
PEER_MESSAGE_RATE_PER_MIN = 60        # private messages from one node: sustained...
PEER_MESSAGE_BURST = 120              # ...and at once
PEER_REPORT_RATE_PER_H = 30           # reports from one node: sustained...
PEER_REPORT_BURST = 30                # ...and at once
PEER_MAX_OPEN_REPORTS = 100           # reports from one node stored and still open here
PEER_MAX_MESSAGES_PER_DAY = 5000      # messages from one node's members stored in a day
PEER_RECONCILE_CONCURRENCY = 1        # reconciliation rounds of one node answered at once

# --- Streams: announce and push over one long-lived connection per peer ---------
STREAM_MAX_FRAME_BYTES = FEDERATION_MAX_BODY_BYTES + 64  # one frame: a body and its few bytes of framing
STREAM_MAX_PER_NODE = 2               # streams one node may hold open here at once; more: 429
STREAM_FRAME_RATE_PER_S = 100         # requests on the streams of one node: sustained...
STREAM_FRAME_BURST = 500              # ...and at once
STREAM_HEARTBEAT_S = 30               # a ping this often; a stream without its pong is closed

# --- The directory of nodes and key successions --------------------------------
MAX_SUCCESSION_BYTES = 256            # a whole signed succession on the wire
DIRECTORY_MAX_RECORDS = 200           # records in one nodes push or nodes-fetch answer; keys in one fetch
DIRECTORY_MAX_ENTRIES = 10_000        # entries in one nodes-digest answer
DIRECTORY_MIN_REISSUE_S = 60          # a node document issued sooner after the one held is ignored

# --- Conversations ----------------------------------------------------------
CONVERSATION_KEY_BYTES = 16           # the id both nodes give one conversation
MESSAGE_ID_BYTES = 16                 # a private message's id: a retried delivery is stored once
MAX_MESSAGE_CHARS = 4000              # the longest private message text
MAX_MESSAGE_BODY_BYTES = 32 * 1024    # a whole message request of the federation API

# --- Reports ----------------------------------------------------------------
REPORT_KEY_BYTES = 16                 # a forwarded report's id: a report sent twice is stored once
REPORT_MAX_DETAILS_CHARS = 1000       # the longest details a resident adds to a report
REPORT_MAX_BODY_BYTES = 8 * 1024      # a whole report request of the federation API

# --- Blocks between members (docs/protocol-safety.md) ---------------------------
MAX_BLOCKS_PER_MEMBER = 500           # members one member blocks at once (here, and from a node)
PEER_MAX_BLOCKS = 50_000              # blocks of one node's members held here at once
MAX_BLOCK_BODY_BYTES = 256            # a whole block notice of the federation API
