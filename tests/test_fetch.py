"""The outbound HTTP guard: which addresses may be reached, and total-time deadlines."""

from __future__ import annotations

import contextlib
import http.server
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reelscribe import fetch
from reelscribe.errors import MediaError

HOST = "127.0.0.2"
ALLOWED = fetch.parse_networks([f"{HOST}/32"])


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "169.254.169.254",
        "10.1.2.3",
        "::1",
        "::ffff:127.0.0.1",
        "64:ff9b::a9fe:a9fe",  # NAT64 → 169.254.169.254
        "64:ff9b::7f00:1",  # NAT64 → 127.0.0.1
        "64:ff9b::a00:1",  # NAT64 → 10.0.0.1
        "64:ff9b:1::808:808",  # local-use NAT64: the IPv4 host cannot be known
        "2002:a9fe:a9fe::1",  # 6to4 → 169.254.169.254
        "2002:c0a8:101::1",  # 6to4 → 192.168.1.1
        "::127.0.0.1",  # IPv4-compatible → 127.0.0.1
        "::a9fe:a9fe",  # IPv4-compatible → 169.254.169.254
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
        "fe80::1%eth0",
        "fd00::1",
    ],
)
def test_addresses_that_lead_inside_are_refused(address: str) -> None:
    assert not fetch.is_allowed_address(address)


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", "2001:4860:4860::8888", "64:ff9b::808:808", "2002:808:808::1"],
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert fetch.is_allowed_address(address)


def test_an_allowed_network_admits_its_embedded_forms_only() -> None:
    allowed = fetch.parse_networks(["10.0.0.0/8"])
    assert fetch.is_allowed_address("10.1.2.3", allowed)
    assert fetch.is_allowed_address("::ffff:10.1.2.3", allowed)
    assert not fetch.is_allowed_address("64:ff9b::7f00:1", allowed)  # 127.0.0.1


def test_literal_ipv6_urls_are_checked_like_names() -> None:
    with pytest.raises(MediaError) as err:
        fetch.check_url("http://[64:ff9b::a9fe:a9fe]/latest/meta-data/")
    assert err.value.reason == "URL_NOT_PUBLIC"


class _Trickle(http.server.BaseHTTPRequestHandler):
    """Answers one byte at a time, each well inside any socket timeout."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def handle(self) -> None:
        with contextlib.suppress(ConnectionError):  # the client hung up: the point
            super().handle()

    def do_GET(self) -> None:
        if self.path == "/slow-headers":
            self.wfile.write(b"HTTP/1.1 200 OK\r\n")
            for _ in range(200):
                self.wfile.write(b"X-Pad: 1\r\n")
                self.wfile.flush()
                time.sleep(0.2)
            return
        self.send_response(200)
        self.send_header("Content-Length", "100000")
        self.end_headers()
        for _ in range(200):
            self.wfile.write(b"x")
            self.wfile.flush()
            time.sleep(0.2)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.wfile.write(b"HTTP/1.1 200 OK\r\n")
        for _ in range(200):
            self.wfile.write(b"X-Pad: 1\r\n")
            self.wfile.flush()
            time.sleep(0.2)


@pytest.fixture(scope="module")
def trickle() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer((HOST, 0), _Trickle)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://{HOST}:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.parametrize("path", ["/slow-body", "/slow-headers"])
def test_a_trickling_server_cannot_outlast_the_download_deadline(
    trickle: str, path: str, tmp_path: Path
) -> None:
    limits = fetch.FetchLimits(max_bytes=10**6, timeout_s=1.5, allowed_networks=ALLOWED)
    started = time.monotonic()
    with pytest.raises(MediaError) as err:
        fetch.download(trickle + path, tmp_path / "out", limits)
    assert err.value.reason == "URL_TIMEOUT"
    # Each byte arrives well inside the socket timeout; only the total deadline stops it.
    assert time.monotonic() - started < 1.5 + 3.0


def test_a_trickling_webhook_receiver_cannot_outlast_its_timeout(trickle: str) -> None:
    started = time.monotonic()
    with pytest.raises((TimeoutError, socket.timeout)):
        fetch.post(trickle + "/hook", b"{}", {}, timeout_s=1.0, allowed_networks=ALLOWED)
    assert time.monotonic() - started < 1.0 + 3.0
