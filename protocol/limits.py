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
