"""Node errors: configuration and start-up problems an operator can fix.

    TrocError (protocol.errors)
    └── NodeError
        ├── ConfigError     the configuration or the key file is unusable
        └── StartupError    the node cannot start (port in use, database down)
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
