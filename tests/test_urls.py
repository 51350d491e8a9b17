"""URL sources: downloads with caps, and no way to reach non-public addresses."""

from __future__ import annotations

import contextlib
import http.server
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from reelscribe.blobs import owner_prefix
from reelscribe.config import Settings
from reelscribe.v1 import job_pb2, job_service_pb2
from tests.support.api import Api, error_details
from tests.support.media import MEDIA_DIR

HOST = "127.0.0.2"


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        port = self.server.server_address[1]
        routes = {
            "/volcano.ogg": lambda: self._send(200, (MEDIA_DIR / "volcano.ogg").read_bytes()),
            "/hop": lambda: self._redirect(f"http://{HOST}:{port}/volcano.ogg"),
            "/to-loopback": lambda: self._redirect(f"http://127.0.0.1:{port}/volcano.ogg"),
            "/to-metadata": lambda: self._redirect("http://169.254.169.254/latest/meta-data/"),
            "/loop": lambda: self._redirect("/loop"),
            "/missing": lambda: self._send(404, b"no"),
            "/junk.mp3": lambda: self._send(200, os.urandom(50_000)),
            "/huge": self._huge,
            "/slow": self._slow,
            "/trickle": self._trickle,
        }
        routes.get(self.path, lambda: self._send(404, b"no"))()

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _huge(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(10**13))
        self.end_headers()

    def _trickle(self) -> None:
        # One byte a second for two minutes: each arrives well inside any
        # socket timeout, so only a deadline on the whole download stops it.
        self.send_response(200)
        self.send_header("Content-Length", "120")
        self.end_headers()
        with contextlib.suppress(ConnectionError):
            for _ in range(120):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(1.0)

    def _slow(self) -> None:
        self.send_response(200)
        self.end_headers()
        for _ in range(40):
            self.wfile.write(b"x" * 100)
            self.wfile.flush()
            time.sleep(0.25)


@pytest.fixture(scope="module")
def media_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer((HOST, 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://{HOST}:{server.server_address[1]}"
    server.shutdown()


async def _url_job(api: Api, url: str) -> job_pb2.Job:
    request = job_service_pb2.CreateJobRequest(source_uri=url)
    job = (await api.jobs.CreateJob(request, metadata=api.metadata)).job
    return [e for e in await api.watch(job.name)][-1].job


async def test_url_source_is_downloaded_and_transcribed(api: Api, media_server: str) -> None:
    for path in ("/volcano.ogg", "/hop"):
        job = await _url_job(api, media_server + path)
        assert job.state == job_pb2.JOB_STATE_SUCCEEDED, job.error
        assert job.source_uri == media_server + path
        assert "eruption" in (await api.transcript(job.name)).text.lower()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/x.mp4",
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost/x.mp4",
        "http://[::1]/x.mp4",
        "http://10.0.0.7/x.mp4",
        "http://[::ffff:127.0.0.1]/x.mp4",
        # IPv6 forms that lead to an IPv4 host: NAT64 (well-known and local-use
        # prefixes), 6to4, IPv4-compatible, and Teredo.
        "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/",
        "http://[64:ff9b:1::a9fe:a9fe]/x.mp4",
        "http://[2002:a9fe:a9fe::1]/x.mp4",
        "http://[::127.0.0.1]/x.mp4",
        "http://[::a00:7]/x.mp4",
        "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/x.mp4",
    ],
)
async def test_non_public_addresses_are_refused_up_front(api: Api, url: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await api.jobs.CreateJob(
            job_service_pb2.CreateJobRequest(source_uri=url), metadata=api.metadata
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_details(err.value)["ErrorInfo"].reason == "URL_NOT_PUBLIC"


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/a.mp3",
        "file:///etc/passwd",
        "http://user:pw@example.com/a.mp3",
        "not a url",
    ],
)
async def test_malformed_urls_are_invalid(api: Api, url: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await api.jobs.CreateJob(
            job_service_pb2.CreateJobRequest(source_uri=url), metadata=api.metadata
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_details(err.value)["BadRequest"].field_violations[0].field == "source_uri"


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/to-loopback", "URL_NOT_PUBLIC"),
        ("/to-metadata", "URL_NOT_PUBLIC"),
        ("/loop", "URL_TOO_MANY_REDIRECTS"),
        ("/missing", "URL_HTTP_ERROR"),
        ("/junk.mp3", "NOT_MEDIA"),
        ("/huge", "URL_TOO_LARGE"),
        ("/slow", "URL_TIMEOUT"),
    ],
)
async def test_bad_downloads_fail_the_job_and_leave_nothing(
    api: Api, user: str, media_server: str, settings: Settings, path: str, reason: str
) -> None:
    job = await _url_job(api, media_server + path)
    assert job.state == job_pb2.JOB_STATE_FAILED
    assert job.error.reason == reason, job.error
    workdir: Path = settings.data_dir / "work" / owner_prefix(user)
    assert not workdir.exists() or not any(workdir.iterdir())


async def test_a_trickling_server_cannot_hold_a_worker(api: Api, media_server: str) -> None:
    # The test workers give a download 5 s (REELSCRIBE_URL_FETCH_TIMEOUT_S).
    started = time.monotonic()
    job = await _url_job(api, media_server + "/trickle")
    assert job.state == job_pb2.JOB_STATE_FAILED
    assert job.error.reason == "URL_TIMEOUT", job.error
    # Well before the server would have finished (120 s): the deadline held.
    assert time.monotonic() - started < 60
