"""uvicorn, serving the gRPC-Web app in the server's own event loop.

Not `uvicorn.Server.serve`: that installs its own signal handlers and runs a
loop of its own devising, while the server process already owns SIGTERM
(`server.app.serve`) and its shutdown order. The listener binds its socket
itself (so a busy address is our clear error, not uvicorn's `sys.exit`), and
uses uvicorn's startup and shutdown steps directly. uvicorn's own log lines go
through the process's structured logging, warnings and errors only; calls are
logged and measured by the interceptor, so there is no access log.
"""

from __future__ import annotations

import math
import socket

import uvicorn

from server.listen import ListenError
from server.web.router import WebApp


def bind_web(address: str) -> socket.socket:
    """A listening socket on `address` (`host:port`); raises `ListenError`."""
    try:
        return _bind(address)
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ListenError(
            f"cannot listen on {address} for gRPC-Web: {reason}; set REELSCRIBE_WEB_LISTEN "
            "to another address (empty: no gRPC-Web)"
        ) from exc


def _bind(address: str) -> socket.socket:
    host, _, port = address.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # As uvicorn does: a restarted server rebinds despite TIME_WAIT sockets.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, int(port)))
        sock.listen(128)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class WebListener:
    """One HTTP/1.1 listener (uvicorn, h11) for `app`."""

    def __init__(self, app: WebApp, address: str, sock: socket.socket | None = None) -> None:
        self.app = app
        self.address = address
        #: The bound port (0 until bound).
        self.port = int(sock.getsockname()[1]) if sock is not None else 0
        self._sock = sock
        self._server: uvicorn.Server | None = None

    @property
    def bound_address(self) -> str:
        """`host:port` it listens on (the port bound, when 0 was asked for)."""
        host = self.address.rpartition(":")[0] or "0.0.0.0"
        return f"{host}:{self.port}" if self.port else ""

    @property
    def url(self) -> str:
        """The console's URL, `http://host:port/` (loopback for a wildcard host)."""
        host = self.address.rpartition(":")[0]
        if host.strip("[]") in ("", "0.0.0.0", "::"):
            host = "127.0.0.1"
        return f"http://{host}:{self.port}/"

    async def start(self) -> int:
        """Bind (unless given a socket) and start serving; returns the bound port.

        Raises `ListenError` when the address cannot be bound.
        """
        if self._sock is None:
            self._sock = bind_web(self.address)
            self.port = int(self._sock.getsockname()[1])
        config = uvicorn.Config(
            self.app,
            http="h11",
            ws="none",
            lifespan="off",
            interface="asgi3",
            log_config=None,
            log_level="warning",
            access_log=False,
            proxy_headers=False,
            server_header=False,
            date_header=False,
        )
        config.load()
        server = uvicorn.Server(config)
        # What `Server.serve` sets up before its startup step.
        server.lifespan = config.lifespan_class(config)
        await server.startup(sockets=[self._sock])
        self._server = server
        return self.port

    async def stop(self, grace_s: float) -> None:
        """Stop accepting, give responses in flight `grace_s`, then cancel them.

        Streams were already told to end (the interceptor's drain), so their
        connections close well within the grace.
        """
        if self._server is None:
            if self._sock is not None:
                self._sock.close()
            return
        server, self._server = self._server, None
        server.config.timeout_graceful_shutdown = max(math.ceil(grace_s), 1)
        server.should_exit = True
        await server.shutdown(sockets=[self._sock] if self._sock else None)
