"""Node errors: configuration and start-up problems an operator can fix.

    TrocError (protocol.errors)
    └── NodeError
        ├── ConfigError     the configuration or the key file is unusable
        ├── StartupError    the node cannot start (port in use, database down)
        ├── PeerError       a peer cannot be reached or answers wrongly
        │   ├── PeerUnreachable  no connection, or no answer in time
        │   ├── PeerRefused      the peer answered with an error (status, code)
        │   └── PeerBadAnswer    the answer breaks the protocol (not a Troc node,
        │                        too large, malformed, another key)
        ├── TooManyRequests a node (or a visitor) asked more than its bounds: 429, Retry-After
        └── NotAllowed      a member may not do this (node.annonces, node.conversations)
            ├── NotTheAuthor     only an annonce's author may change it
            ├── Suspended        a suspended member may read, not post or answer
            ├── CannotAnswer     one's own annonce, or one no longer open
            ├── Unreachable      the other member's node is not one we can send to
            ├── CannotThank      who helped, and the merci: not one's exchange, or said already
            ├── CannotBlock      oneself, an unknown member, or too many blocks
            ├── KeptApart        a block stands between the two members
            ├── NotCoordinator   only the association's coordinators keep its desk (node.desk)
            ├── NotAccompanying  a coordinator acts only for the members they accompany
            └── NewMemberLimit   a new account reached its posting limit of the day
"""

from __future__ import annotations

from protocol.errors import TrocError


class NodeError(TrocError):
    code = "node-error"


class ConfigError(NodeError):
    """The configuration or the key file is unusable."""

    code = "bad-config"


class StartupError(NodeError):
    """The node cannot start."""

    code = "cannot-start"


class PeerError(NodeError):
    """A peer cannot be reached or answers wrongly."""

    code = "peer-error"


class PeerUnreachable(PeerError):
    """The peer cannot be reached, or did not answer in time."""

    code = "peer-unreachable"


class PeerRefused(PeerError):
    """The peer answered with an error: its HTTP status and problem code."""

    code = "peer-refused"

    def __init__(self, detail: str = "", *, status: int, peer_code: str) -> None:
        self.status = status
        self.peer_code = peer_code
        super().__init__(detail)

    @property
    def is_transient(self) -> bool:
        """Worth trying again later: the peer is overloaded, failing, or does not know us yet."""
        return self.status >= 500 or self.status in (401, 403, 408, 429)


class PeerBadAnswer(PeerError):
    """The peer's answer breaks the protocol."""

    code = "peer-bad-answer"


class NotAllowed(NodeError):
    """A member may not do this."""

    code = "not-allowed"


class NotTheAuthor(NotAllowed):
    """Only the member who wrote an annonce may change it."""

    code = "not-the-author"


class Suspended(NotAllowed):
    """A suspended member may read, not post, answer or show an annonce again."""

    code = "suspended"


class CannotAnswer(NotAllowed):
    """This member may not answer this annonce (their own, or no longer open)."""

    code = "cannot-answer"


class Unreachable(NotAllowed):
    """The other member's node is not one this node can send to."""

    code = "unreachable"


class CannotThank(NotAllowed):
    """Not this member's annonce or exchange, not fulfilled, or said already (node.thanks)."""

    code = "cannot-thank"


class CannotBlock(NotAllowed):
    """This member may not block that one (oneself, nobody known, or too many blocks)."""

    code = "cannot-block"


class KeptApart(NotAllowed):
    """A block stands between the two members: neither writes to the other."""

    code = "kept-apart"


class NewMemberLimit(NotAllowed):
    """A new account reached a limit of its first days (``done`` of ``limit``, ``frees_at``)."""

    code = "new-member-limit"

    def __init__(self, detail: str = "", *, what: str, done: int, limit: int,
                 frees_at: int) -> None:  # fmt: skip
        super().__init__(detail)
        self.what, self.done, self.limit, self.frees_at = what, done, limit, frees_at


class NotCoordinator(NotAllowed):
    """Only a coordinator of the association may use its desk."""

    code = "not-coordinator"


class NotAccompanying(NotAllowed):
    """A coordinator acts only for the accompanied members they accompany, while accompanied."""

    code = "not-accompanying"


class TooManyRequests(NodeError):
    """Asked more than the bounds allow: try again after ``retry_after`` seconds."""

    code = "too-many-requests"

    def __init__(self, detail: str = "", *, retry_after: int = 1, field: str | None = None) -> None:
        super().__init__(detail, field=field)
        self.retry_after = retry_after
