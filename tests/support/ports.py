"""Loopback ports for servers the tests start, and for ones they expect to be absent."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A loopback TCP port nothing listens on.

    The OS picks it and the socket is closed at once, so the port is free now;
    whoever binds it next (or nobody, for "nothing listens here") is the test's.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
