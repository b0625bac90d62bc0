"""Key successions (docs/protocol.md section 12): signed by the old key or its recovery key,
verified on the bytes received, and ranked so that the recovery key always wins."""

from __future__ import annotations

import msgpack
import pytest

from protocol import limits
from protocol.errors import (
    DecodeError,
    SignatureError,
    TooLargeError,
    UnknownKeyError,
    ValidationError,
)
from protocol.identity import NodeKey
from protocol.succession import (
    BY_KEY,
    BY_RECOVERY,
    SUCCESSION_DOMAIN,
    SignedSuccession,
    Succession,
    encode_body,
    open_succession,
    peek_old,
    precedence,
    sign_succession,
)

OLD = NodeKey.from_seed(b"\x01" * 32)
NEW = NodeKey.from_seed(b"\x02" * 32)
THIEF = NodeKey.from_seed(b"\x03" * 32)
RECOVERY = NodeKey.from_seed(b"\x04" * 32)
NOW = 1_790_000_000


def recoveries(old: bytes) -> bytes | None:
    return RECOVERY.node_id if old == OLD.node_id else None


def planned(new=NEW, issued=NOW) -> SignedSuccession:
    return sign_succession(OLD, Succession(OLD.node_id, new.node_id if new else None, issued, BY_KEY))


def recovered(new=NEW, issued=NOW) -> SignedSuccession:
    return sign_succession(RECOVERY, Succession(OLD.node_id, new.node_id, issued, BY_RECOVERY))


def test_a_planned_succession_round_trips_from_its_bytes():
    signed = planned()
    opened = open_succession(signed.envelope, recovery_of=recoveries, now=NOW)
    assert opened.succession == Succession(OLD.node_id, NEW.node_id, NOW, BY_KEY)
    assert opened.id == signed.id and opened.body == signed.body
    assert peek_old(signed.envelope) == OLD.node_id


def test_a_recovery_succession_is_checked_against_the_recovery_key_known_here():
    signed = recovered()
    assert open_succession(signed.envelope, recovery_of=recoveries, now=NOW).succession.by == BY_RECOVERY
    with pytest.raises(UnknownKeyError) as refused:
        open_succession(signed.envelope, recovery_of=lambda _old: None, now=NOW)
    assert refused.value.field == "by"


def test_a_revocation_has_no_successor():
    signed = planned(new=None)
    assert open_succession(signed.envelope, recovery_of=recoveries, now=NOW).succession.revoked


def test_only_the_old_key_signs_a_planned_succession():
    with pytest.raises(SignatureError):
        sign_succession(THIEF, Succession(OLD.node_id, NEW.node_id, NOW, BY_KEY))
    forged_body = encode_body(Succession(OLD.node_id, THIEF.node_id, NOW, BY_KEY))
    forged = msgpack.packb([forged_body, THIEF.sign(SUCCESSION_DOMAIN + forged_body)])
    with pytest.raises(SignatureError):
        open_succession(forged, recovery_of=recoveries, now=NOW)


def test_a_recovery_succession_signed_by_the_node_key_does_not_verify():
    body = encode_body(Succession(OLD.node_id, THIEF.node_id, NOW, BY_RECOVERY))
    envelope = msgpack.packb([body, OLD.sign(SUCCESSION_DOMAIN + body)])
    with pytest.raises(SignatureError):
        open_succession(envelope, recovery_of=recoveries, now=NOW)


@pytest.mark.parametrize(("envelope", "error"), [
    (b"\xc1", DecodeError),
    (msgpack.packb([b"x"]), DecodeError),
    (msgpack.packb(["body", b"s" * 64]), DecodeError),
    (msgpack.packb([b"\x80", b"s" * 63]), DecodeError),
    (msgpack.packb([msgpack.packb({"old": b"o" * 32}), b"s" * 64]), DecodeError),
    (b"x" * (limits.MAX_SUCCESSION_BYTES + 1), TooLargeError),
])  # fmt: skip
def test_malformed_envelopes_are_refused(envelope, error):
    with pytest.raises(error):
        open_succession(envelope, recovery_of=recoveries, now=NOW)


def test_a_body_not_in_its_canonical_form_is_refused():
    s = Succession(OLD.node_id, NEW.node_id, NOW, BY_KEY)
    reordered = msgpack.packb({"by": s.by, "issued": s.issued, "new": s.new, "old": s.old})
    envelope = msgpack.packb([reordered, OLD.sign(SUCCESSION_DOMAIN + reordered)])
    with pytest.raises(DecodeError):
        open_succession(envelope, recovery_of=recoveries, now=NOW)


@pytest.mark.parametrize("succession", [
    Succession(OLD.node_id, OLD.node_id, NOW, BY_KEY),
    Succession(OLD.node_id, b"short", NOW, BY_KEY),
    Succession(OLD.node_id, NEW.node_id, NOW, "friend"),
    Succession(OLD.node_id, NEW.node_id, 12, BY_KEY),
])  # fmt: skip
def test_invalid_successions_are_not_signed(succession):
    with pytest.raises(ValidationError):
        sign_succession(OLD, succession)


def test_a_succession_from_the_future_is_refused():
    with pytest.raises(ValidationError) as refused:
        open_succession(planned(issued=NOW + limits.MAX_CLOCK_SKEW_S + 1).envelope,
                        recovery_of=recoveries, now=NOW)  # fmt: skip
    assert refused.value.field == "issued"


def test_the_recovery_key_wins_whatever_came_first():
    """A thief's succession, earlier, loses to the owner's later one by recovery."""
    thief = sign_succession(OLD, Succession(OLD.node_id, THIEF.node_id, NOW - 3600, BY_KEY))
    owner = recovered(issued=NOW)
    assert precedence(owner) < precedence(thief)
    earlier_planned, later_planned = planned(issued=NOW - 10), planned(new=THIEF, issued=NOW)
    assert precedence(earlier_planned) < precedence(later_planned)
