"""Downloading media from public http(s) URLs, safely.

Server-side request forgery is the risk: a URL that points (directly, by DNS,
or through a redirect) at loopback, a private network or a cloud metadata
address. Every hop is checked the same way: the host is resolved once, every
address must be public, and the connection goes to the checked address (the
name is only used for the Host header and TLS), so a DNS answer that changes
between check and connect cannot redirect the request.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from reelscribe.errors import MediaError

_MAX_REDIRECTS = 5
_USER_AGENT = "Reelscribe/0.1"

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class FetchLimits:
    """Caps on one download."""

    max_bytes: int
    timeout_s: float
    #: Networks allowed although not public (tests, private deployments).
    allowed_networks: tuple[IpNetwork, ...] = ()


def parse_networks(values: Iterable[str]) -> tuple[IpNetwork, ...]:
    """`["127.0.0.2/32"]` → networks."""
    return tuple(ipaddress.ip_network(v, strict=False) for v in values)


def check_url_syntax(url: str) -> urllib.parse.SplitResult:
    """The parsed URL, or a MediaError saying why it is not an http(s) URL we fetch."""
    if len(url) > 2048:
        raise MediaError("URL_INVALID", "URLs are at most 2048 characters")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise MediaError("URL_INVALID", "only http and https URLs can be fetched")
    if not parts.hostname:
        raise MediaError("URL_INVALID", "the URL has no host")
    if parts.username or parts.password:
        raise MediaError("URL_INVALID", "URLs with credentials are not accepted")
    return parts


#: IPv6 ranges that carry an IPv4 address in their last 32 bits: a connection
#: to one of them may end at that IPv4 host (a NAT64 gateway translates
#: 64:ff9b::a9fe:a9fe to the cloud metadata address 169.254.169.254).
_IPV4_IN_LOW_BITS = (
    ipaddress.IPv6Network("64:ff9b::/96"),  # NAT64, well-known prefix (RFC 6052)
    ipaddress.IPv6Network("::/96"),  # IPv4-compatible (deprecated, RFC 4291)
)
#: IPv6 ranges whose IPv4 host cannot be told from the address alone (the
#: local-use NAT64 prefix places it by a prefix length only its operator
#: knows; Teredo obfuscates it): never connected to.
_OPAQUE_TRANSLATION = (
    ipaddress.IPv6Network("64:ff9b:1::/48"),  # local-use NAT64 (RFC 8215)
    ipaddress.IPv6Network("2001::/32"),  # Teredo (RFC 4380)
)


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 host an IPv6 address leads to, when it embeds one (mapped,
    IPv4-compatible, NAT64 or 6to4)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if any(ip in net for net in _IPV4_IN_LOW_BITS) and int(ip) > 1:  # not :: or ::1
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_allowed_address(address: str, allowed: tuple[IpNetwork, ...] = ()) -> bool:
    """Whether connecting to `address` is safe: public, or explicitly allowed.

    An IPv6 address that embeds an IPv4 one is judged by the IPv4 host it
    leads to, and by itself: both must pass.
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if any(ip in net for net in _OPAQUE_TRANSLATION):
            return any(ip in net for net in allowed)
        inner = embedded_ipv4(ip)
        if inner is not None:
            # A mapped address is the IPv4 host itself (the socket connects to it).
            if ip.ipv4_mapped is not None:
                return _allowed(inner, allowed)
            return _allowed(inner, allowed) and _allowed(ip, allowed)
    return _allowed(ip, allowed)


def _allowed(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address, allowed: tuple[IpNetwork, ...]
) -> bool:
    if any(ip in net for net in allowed):
        return True
    return ip.is_global and not ip.is_multicast


def resolve_public(host: str, port: int, allowed: tuple[IpNetwork, ...] = ()) -> str:
    """One address of `host` to connect to; every address it resolves to must be safe."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise MediaError("URL_UNREACHABLE", f"cannot resolve {host!r}") from exc
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise MediaError("URL_UNREACHABLE", f"{host!r} has no addresses")
    # All of them, not just the first: a name with one public and one private
    # address must not be usable to reach the private one.
    if not all(is_allowed_address(a, allowed) for a in addresses):
        raise MediaError(
            "URL_NOT_PUBLIC",
            f"{host!r} resolves to a loopback, private or reserved address (a private network "
            "can be allowed with the REELSCRIBE_URL_ALLOWED_NETWORKS setting)",
        )
    return addresses[0]


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect and what to ask for."""

    scheme: str
    host: str
    port: int
    #: The resolved, allowed address the connection goes to.
    address: str
    #: Path and query, as sent in the request line.
    path: str


def check_url(url: str, allowed: tuple[IpNetwork, ...] = ()) -> Target:
    """Syntax and address checks of one URL (one hop); MediaError when refused."""
    parts = check_url_syntax(url)
    assert parts.hostname is not None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return Target(
        scheme=parts.scheme,
        host=parts.hostname,
        port=port,
        address=resolve_public(parts.hostname, port, allowed),
        path=urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, "")),
    )


def _connection(target: Target, timeout_s: float) -> http.client.HTTPConnection:
    cls = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    return cls(target.host, target.address, target.port, timeout_s)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, address: str, port: int, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, address: str, port: int, timeout: float) -> None:
        self._ctx = ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self._ctx)
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._ctx.wrap_socket(sock, server_hostname=self.host)


class _Deadline:
    """Cuts a connection at an absolute deadline, whatever call it is blocked in.

    Socket timeouts bound each read, not the whole transfer: a server that
    sends one byte every few seconds never trips them. A timer that shuts the
    socket down does, in the status line, the headers or the body alike.
    """

    def __init__(self, conn: http.client.HTTPConnection, deadline: float) -> None:
        self._conn = conn
        self.expired = False
        self._timer = threading.Timer(max(0.0, deadline - time.monotonic()), self._cut)
        self._timer.daemon = True

    def _cut(self) -> None:
        self.expired = True
        sock = self._conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()


def download(url: str, dest: Path, limits: FetchLimits) -> int:
    """Download `url` to `dest` within `limits`; returns the size in bytes.

    `limits.timeout_s` bounds the whole download, redirects included.
    """
    deadline = time.monotonic() + limits.timeout_s
    current = url
    for _ in range(_MAX_REDIRECTS + 1):
        target = check_url(current, limits.allowed_networks)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise MediaError("URL_TIMEOUT", "the download took too long")
        conn = _connection(target, min(30.0, remaining))
        guard = _Deadline(conn, deadline)
        try:
            with guard:
                conn.request(
                    "GET", target.path, headers={"User-Agent": _USER_AGENT, "Accept": "*/*"}
                )
                response = conn.getresponse()
                if response.status in (301, 302, 303, 307, 308):
                    location = response.getheader("Location")
                    if not location:
                        raise MediaError("URL_HTTP_ERROR", "redirect without a Location header")
                    current = urllib.parse.urljoin(current, location)
                    continue
                if response.status != 200:
                    raise MediaError(
                        "URL_HTTP_ERROR", f"the server answered HTTP {response.status}"
                    )
                declared = response.getheader("Content-Length")
                if (
                    declared
                    and declared.isascii()
                    and declared.isdigit()
                    and int(declared) > limits.max_bytes
                ):
                    raise MediaError(
                        "URL_TOO_LARGE", f"{declared} bytes exceeds the limit of {limits.max_bytes}"
                    )
                size = _save(response, dest, limits.max_bytes, guard)
            if guard.expired:
                raise MediaError("URL_TIMEOUT", "the download took too long")
            return size
        except (OSError, http.client.HTTPException, ValueError) as exc:
            if guard.expired or isinstance(exc, TimeoutError) or time.monotonic() > deadline:
                raise MediaError("URL_TIMEOUT", "the download took too long") from exc
            raise MediaError("URL_UNREACHABLE", f"download failed: {type(exc).__name__}") from exc
        finally:
            conn.close()
    raise MediaError("URL_TOO_MANY_REDIRECTS", f"more than {_MAX_REDIRECTS} redirects")


def _save(response: http.client.HTTPResponse, dest: Path, max_bytes: int, guard: _Deadline) -> int:
    size = 0
    dest.parent.mkdir(parents=True, exist_ok=True)
    with dest.open("wb") as fh:
        while True:
            # read1: whatever has arrived (up to the size), so a trickle is seen
            # between reads; the deadline guard cuts a read that waits too long.
            block = response.read1(256 * 1024)
            if guard.expired:
                raise MediaError("URL_TIMEOUT", "the download took too long")
            if not block:
                break
            size += len(block)
            if size > max_bytes:
                raise MediaError("URL_TOO_LARGE", f"more than the limit of {max_bytes} bytes")
            fh.write(block)
    if size == 0:
        raise MediaError("EMPTY_FILE", "the URL returned no content")
    return size


def post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    timeout_s: float,
    allowed_networks: tuple[IpNetwork, ...] = (),
) -> int:
    """POST `body` to `url` (no redirects) and return the HTTP status.

    `timeout_s` bounds the whole exchange, however slowly the receiver answers.

    The same address checks as downloads apply, so a webhook cannot be aimed
    at the inside of the network.
    """
    target = check_url(url, allowed_networks)
    conn = _connection(target, timeout_s)
    guard = _Deadline(conn, time.monotonic() + timeout_s)
    try:
        with guard:
            conn.request(
                "POST", target.path, body=body, headers={"User-Agent": _USER_AGENT, **headers}
            )
            response = conn.getresponse()
            response.read(64 * 1024)
        if guard.expired:
            raise TimeoutError(f"no answer within {timeout_s} s")
        return response.status
    except OSError as exc:
        if guard.expired and not isinstance(exc, TimeoutError):
            raise TimeoutError(f"no answer within {timeout_s} s") from exc
        raise
    finally:
        conn.close()
