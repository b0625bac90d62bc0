"""Ports for the servers the tests start: free now, and out of the kernel's ephemeral range.

A port the kernel picks with ``bind(("127.0.0.1", 0))`` comes from the same range
as the local ports of outgoing connections; released until a node binds it, it
can be taken meanwhile by a connection some other node opens, and the node
fails to start ("port … is already in use"). Ports below that range are never
handed to outgoing connections, so only another test could take one, and each
is picked at random and checked free.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST = 10_000  # above the ports services commonly use
_DEFAULT_EPHEMERAL = (32768, 60999)
_picked: set[int] = set()  # this process's picks are not handed out twice


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = (int(part) for part in _RANGE_FILE.read_text().split())
    except (OSError, ValueError):
        return _DEFAULT_EPHEMERAL
    return low, high


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now, below the ephemeral range when there is room."""
    low, _high = _ephemeral_range()
    if low - _LOWEST >= 1000:
        for _ in range(200):
            port = random.randrange(_LOWEST, low)
            if port not in _picked and _bindable(port):
                _picked.add(port)
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # the kernel's pick
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
