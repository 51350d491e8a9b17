"""The error of a server that cannot listen where it is told to."""

from __future__ import annotations


class ListenError(RuntimeError):
    """The server cannot listen on its address (native gRPC or gRPC-Web)."""
