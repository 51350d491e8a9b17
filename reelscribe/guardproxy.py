"""A forward proxy through which a downloader can reach only allowed addresses.

yt-dlp (`reelscribe.pages`) opens its own connections: the page, its
playlists, every segment, every redirect. It is given this proxy, so each of
those connections is checked exactly as a direct URL is (`fetch.resolve_public`:
the host resolved once, every address public or explicitly allowed) and then
made to the address that was checked, so a DNS answer that changes between
check and connect cannot redirect it:

- `CONNECT host:port` (https): the tunnel goes to the checked address; TLS stays
  end to end, so the client still verifies the certificate against the name;
- absolute-form requests (http): sent on to the checked address, origin-form,
  with the Host header kept.

Redirects are new requests, checked again. The proxy also holds the download's
caps: bytes received from outside (`max_bytes`) and a deadline, at which every
open tunnel is closed wherever it is blocked.
"""

from __future__ import annotations

import contextlib
import select
import socket
import socketserver
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field

from reelscribe import fetch
from reelscribe.errors import MediaError

#: Longest request head a client may send.
_MAX_HEAD_BYTES = 64 * 1024
#: Seconds a connection attempt to a checked address may take.
_CONNECT_TIMEOUT_S = 10.0
_HOP_BY_HOP = {"proxy-connection", "proxy-authorization", "connection", "keep-alive"}


@dataclass
class _State:
    allowed: tuple[fetch.IpNetwork, ...]
    max_bytes: int
    deadline: float
    #: Why connections were refused (the first one is reported).
    refused: list[MediaError] = field(default_factory=list)
    received_bytes: int = 0
    too_large: bool = False
    timed_out: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    sockets: set[socket.socket] = field(default_factory=set)


class GuardProxy:
    """The proxy on a loopback port while the `with` block runs."""

    def __init__(
        self, allowed: tuple[fetch.IpNetwork, ...], *, max_bytes: int, timeout_s: float
    ) -> None:
        self.state = _State(allowed, max_bytes, time.monotonic() + timeout_s)
        self._server: socketserver.ThreadingTCPServer | None = None

    @property
    def url(self) -> str:
        """The proxy's URL, for the downloader's `proxy` option."""
        assert self._server is not None
        port = self._server.server_address[1]
        return f"http://127.0.0.1:{port}"

    def __enter__(self) -> GuardProxy:
        state = self.state

        class Handler(_Handler):
            guard = state

        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        threading.Thread(target=server.serve_forever, name="guard-proxy", daemon=True).start()
        threading.Thread(target=self._watch_deadline, name="guard-deadline", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()
        self._close_all()

    def _watch_deadline(self) -> None:
        while self._server is not None and time.monotonic() < self.state.deadline:
            time.sleep(0.2)
        if time.monotonic() >= self.state.deadline:
            self.state.timed_out = True
            self._close_all()

    def _close_all(self) -> None:
        with self.state.lock:
            for sock in list(self.state.sockets):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    sock.close()
            self.state.sockets.clear()


class _Handler(socketserver.StreamRequestHandler):
    guard: _State
    # Unbuffered: the head is read a byte at a time, so nothing after it (a
    # request body, TLS) is left in a buffer the relay would not see.
    rbufsize = 0

    def handle(self) -> None:
        state = self.guard
        with state.lock:
            state.sockets.add(self.connection)
        try:
            head = self._read_head()
            if head is None:
                return
            method, target, rest = head
            if method == "CONNECT":
                host, _, port = target.rpartition(":")
                upstream = self._open(host.strip("[]"), int(port or 443))
                if upstream is None:
                    return
                self.connection.sendall(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            else:
                parts = urllib.parse.urlsplit(target)
                if parts.scheme != "http" or not parts.hostname:
                    self._refuse(403, "only absolute http:// requests and CONNECT are proxied")
                    return
                upstream = self._open(parts.hostname, parts.port or 80)
                if upstream is None:
                    return
                path = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
                upstream.sendall(f"{method} {path} HTTP/1.1\r\n".encode() + rest)
            self._relay(upstream)
        finally:
            with state.lock:
                state.sockets.discard(self.connection)

    def _read_head(self) -> tuple[str, str, bytes] | None:
        """Method, target and the rest of the head (headers rewritten, blank line included)."""
        line = self.rfile.readline(_MAX_HEAD_BYTES)
        parts = line.decode("latin-1").split()
        if len(parts) != 3:
            self._refuse(400, "malformed request line")
            return None
        headers = []
        size = len(line)
        while True:
            header = self.rfile.readline(_MAX_HEAD_BYTES)
            size += len(header)
            if size > _MAX_HEAD_BYTES:
                self._refuse(431, "request head too large")
                return None
            if header in (b"\r\n", b"\n", b""):
                break
            name = header.split(b":", 1)[0].strip().decode("latin-1").lower()
            if name not in _HOP_BY_HOP:
                headers.append(header)
        rest = b"".join(headers) + b"Connection: close\r\n\r\n"
        return parts[0].upper(), parts[1], rest

    def _open(self, host: str, port: int) -> socket.socket | None:
        state = self.guard
        try:
            address = fetch.resolve_public(host, port, state.allowed)
        except MediaError as exc:
            state.refused.append(exc)
            self._refuse(403, exc.message)
            return None
        try:
            upstream = socket.create_connection((address, port), timeout=_CONNECT_TIMEOUT_S)
        except OSError:
            self._refuse(502, f"cannot connect to {host}:{port}")
            return None
        with state.lock:
            state.sockets.add(upstream)
        return upstream

    def _refuse(self, status: int, reason: str) -> None:
        body = reason.encode()
        with contextlib.suppress(OSError):
            self.connection.sendall(
                f"HTTP/1.1 {status} Refused\r\nContent-Type: text/plain\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )

    def _relay(self, upstream: socket.socket) -> None:
        """Bytes both ways until either side closes, the cap or the deadline."""
        state = self.guard
        client = self.connection
        try:
            while time.monotonic() < state.deadline:
                ready, _, _ = select.select([client, upstream], [], [], 0.5)
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is upstream:
                        with state.lock:
                            state.received_bytes += len(data)
                            if state.received_bytes > state.max_bytes:
                                state.too_large = True
                                return
                        client.sendall(data)
                    else:
                        upstream.sendall(data)
        except OSError:
            return
        finally:
            with state.lock:
                state.sockets.discard(upstream)
            with contextlib.suppress(OSError):
                upstream.close()


@contextlib.contextmanager
def guarded(
    allowed: tuple[fetch.IpNetwork, ...], *, max_bytes: int, timeout_s: float
) -> Iterator[GuardProxy]:
    """A running `GuardProxy` for one download."""
    with GuardProxy(allowed, max_bytes=max_bytes, timeout_s=timeout_s) as proxy:
        yield proxy
