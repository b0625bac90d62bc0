"""What a member is told: the kinds, the member's choices, and the links mailed to them.

A feature tells a member something by calling ``tell`` in its own unit of
work (a message stored, an annonce that fits a saved search, a request that
fits an offer, an annonce about to expire): the notification is stored once
per member, kind and key, shown in the web view (``/avis``), and marked
WAITING for mail when the member has a confirmed address and has not chosen
"never" for that kind. node/mailing.py mails what waits, at the cadence the
member chose.

The links in a mail work without logging in: a one-click unsubscribe
(RFC 8058) and a renewal carry an HMAC token made with the node's secret
(``mail_links``, in the database), naming the member, the purpose, what it
acts on and the day it was made; a forged or altered token fails the HMAC,
an old one expires after LINK_LIFETIME_DAYS. Using one twice does the same
thing twice (unsubscribing is idempotent). Confirmation and password-reset
tokens are single use instead: random, stored hashed (storage.notices).
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from storage import notices
from storage.db import Connection
from storage.notices import NOT_MAILED, WAITING

# The kinds of notification, and how often each may be mailed.
MESSAGE, EXPIRY, ALERT, MATCH, DIGEST = "message", "expiry", "alert", "match", "digest"
THANKS = "thanks"  # named as the one who helped, or a merci written (node/thanks.py)
KINDS = (MESSAGE, EXPIRY, ALERT, MATCH, DIGEST, THANKS)  # new kinds last: link codes stay
IMMEDIATELY, DAILY, WEEKLY, NEVER = "immediately", "daily", "weekly", "never"
CADENCES = (IMMEDIATELY, DAILY, WEEKLY, NEVER)
DEFAULT_CADENCE = {MESSAGE: IMMEDIATELY, EXPIRY: IMMEDIATELY, ALERT: DAILY, MATCH: DAILY,
                   DIGEST: WEEKLY, THANKS: IMMEDIATELY}  # fmt: skip
CHOICES = {kind: CADENCES for kind in KINDS} | {DIGEST: (WEEKLY, NEVER)}

MATCH_RADII_KM = (1, 2, 5, 10, 20)
DEFAULT_MATCH_KM = notices.DEFAULT_MATCH_KM
LINK_LIFETIME_DAYS = 365
INBOX_PAGE = 50  # notifications shown in the web view
KEEP_NOTIFICATIONS_DAYS = 90

# Purposes of the HMAC links, one byte each.
UNSUBSCRIBE, RENEW = 1, 2
_KIND_CODES = {kind: code for code, kind in enumerate(KINDS, start=1)}
_ALL_KINDS = 0  # an unsubscribe link for every kind at once (the digest's)
_MAC_BYTES = 16


def cadence(preferences: dict[str, str], kind: str) -> str:
    chosen = preferences.get(kind)
    return chosen if chosen in CHOICES[kind] else DEFAULT_CADENCE[kind]


@dataclass(frozen=True, slots=True)
class Notice:
    """One thing to tell one member: ``key`` makes it once per member and kind."""

    member_id: int
    kind: str
    key: bytes
    data: dict


def tell(
    conn: Connection, notices_: Sequence[Notice], *, mail_enabled: bool, now: int
) -> int:
    """Store the notices in the caller's unit, each marked for mail or not; how many were new."""
    if not notices_:
        return 0
    held = notices.held_keys(conn, [n.member_id for n in notices_], notices_[0].kind,
                             [n.key for n in notices_]) if len({n.kind for n in notices_}) == 1 \
        else set()  # fmt: skip
    notices_ = [n for n in notices_ if (n.member_id, n.key) not in held]
    if not notices_:
        return 0
    member_ids = {n.member_id for n in notices_}
    emails = notices.emails_of(conn, member_ids)
    preferences = notices.preferences_of(conn, member_ids)
    rows = []
    for n in notices_:
        email = emails.get(n.member_id)
        mailed = (mail_enabled and email is not None and email.usable
                  and cadence(preferences[n.member_id], n.kind) != NEVER)  # fmt: skip
        rows.append({"member_id": n.member_id, "kind": n.kind, "key": n.key, "data": n.data,
                     "mail": WAITING if mailed else NOT_MAILED})  # fmt: skip
    return notices.add_notifications(conn, rows, now=now)


def key_of(*parts: bytes | str | int) -> bytes:
    """A notification's key from what makes it one (an annonce's ref, a stage…)."""
    digest = hashlib.sha256()
    for part in parts:
        data = part if isinstance(part, bytes) else str(part).encode()
        digest.update(struct.pack(">I", len(data)) + data)
    return digest.digest()


# --- Links that work without logging in ---------------------------------------------


def _mac(secret: bytes, payload: bytes) -> bytes:
    return hmac.new(secret, payload, "sha256").digest()[:_MAC_BYTES]


def make_link_token(
    secret: bytes, purpose: int, member_id: int, subject: bytes, *, day: int
) -> bytes:
    """A token for ``purpose`` on ``subject`` (a kind code, an annonce uid) for the member."""
    payload = struct.pack(">BIIB", purpose, member_id, day, len(subject)) + subject
    return payload + _mac(secret, payload)


@dataclass(frozen=True, slots=True)
class LinkToken:
    purpose: int
    member_id: int
    subject: bytes
    day: int


def read_link_token(secret: bytes, token: bytes, *, today: int) -> LinkToken | None:
    """The token's content if this node made it and it is not too old; else None."""
    if len(token) < 10 + _MAC_BYTES:
        return None
    payload, mac = token[:-_MAC_BYTES], token[-_MAC_BYTES:]
    if not hmac.compare_digest(_mac(secret, payload), mac):
        return None
    purpose, member_id, day, size = struct.unpack(">BIIB", payload[:10])
    subject = payload[10:]
    if len(subject) != size or not 0 <= today - day <= LINK_LIFETIME_DAYS:
        return None
    return LinkToken(purpose, member_id, subject, day)


def unsubscribe_subject(kind: str | None) -> bytes:
    return bytes([_KIND_CODES[kind] if kind is not None else _ALL_KINDS])


def unsubscribed_kinds(subject: bytes) -> tuple[str, ...] | None:
    """The kinds an unsubscribe token stops (all of them for the digest's), None if malformed."""
    if len(subject) != 1:
        return None
    if subject[0] == _ALL_KINDS:
        return KINDS
    kind = next((k for k, code in _KIND_CODES.items() if code == subject[0]), None)
    return (kind,) if kind is not None else None


def unsubscribe(conn: Connection, member_id: int, kinds: Sequence[str]) -> bool:
    """Mail the member none of these kinds any more; False if the member is gone."""
    if notices.recipients(conn, [member_id]).get(member_id) is None:
        return False
    chosen = notices.preferences_of(conn, [member_id])[member_id]
    chosen.update({kind: NEVER for kind in kinds})
    notices.set_preferences(conn, member_id, chosen)
    notices.drop_waiting_of(conn, member_id, kinds)
    return True


def set_choices(conn: Connection, member_id: int, cadences: dict[str, str], *,
                message_text: bool, match_km: int) -> None:  # fmt: skip
    """The member's choices, checked by the caller against CHOICES and MATCH_RADII_KM."""
    notices.set_preferences(conn, member_id, cadences)
    notices.save_settings(conn, member_id, message_text=message_text, match_km=match_km)
    never = [kind for kind, chosen in cadences.items() if chosen == NEVER]
    if never:
        notices.drop_waiting_of(conn, member_id, never)
