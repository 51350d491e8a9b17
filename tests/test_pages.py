"""Page URLs: a web page's media found and downloaded with yt-dlp, every
connection through the same public-address guard as direct URLs.

A local site on 127.0.0.2 (the one network the test settings allow) serves
pages: one with a media link, one with an HLS playlist, one whose media is on
127.0.0.1 (not allowed), one that redirects there, one with no media and one
with two videos.
"""

from __future__ import annotations

import functools
import http.server
import ipaddress
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import imageio_ffmpeg
import pytest

from reelscribe import fetch, pages
from reelscribe.errors import MediaError
from reelscribe.guardproxy import GuardProxy
from reelscribe.v1 import job_pb2, job_service_pb2
from tests.support.api import Api
from tests.support.media import MEDIA_DIR

HOST = "127.0.0.2"


def _pages(port: int) -> dict[str, str]:
    def page(title: str, body: str) -> str:
        return f"<html><head><title>{title}</title></head><body>{body}</body></html>"

    return {
        "/talk": page("Volcano talk", '<video src="/volcano.ogg"></video>'),
        "/live": page(
            "Live", '<video><source src="/hls/index.m3u8" type="application/x-mpegURL"></video>'
        ),
        "/private": page("Private", f'<video src="http://127.0.0.1:{port}/volcano.ogg"></video>'),
        "/via-redirect": page("Hop", '<video src="/to-loopback.ogg"></video>'),
        "/text": page("Just text", "<p>nothing to watch here</p>"),
        "/two": page(
            "Two talks", '<video src="/volcano.ogg"></video><video src="/hls/index.m3u8"></video>'
        ),
    }


class _Site(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        port = self.server.server_address[1]
        found = _pages(port).get(self.path)
        if found is not None:
            body = found.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path == "/to-loopback.ogg":
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{port}/volcano.ogg")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            super().do_GET()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("site")
    (root / "volcano.ogg").write_bytes((MEDIA_DIR / "volcano.ogg").read_bytes())
    (root / "hls").mkdir()
    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-loglevel",
            "error",
            "-i",
            str(root / "volcano.ogg"),
            "-c:a",
            "aac",
            "-f",
            "hls",
            "-hls_time",
            "2",
            "-hls_list_size",
            "0",
            str(root / "hls" / "index.m3u8"),
        ],
        check=True,
    )
    server = http.server.ThreadingHTTPServer(
        (HOST, 0), functools.partial(_Site, directory=str(root))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://{HOST}:{server.server_address[1]}"
    server.shutdown()


LIMITS = fetch.FetchLimits(
    max_bytes=50_000_000,
    timeout_s=30.0,
    allowed_networks=(ipaddress.ip_network(f"{HOST}/32"),),
)


def _download(url: str, tmp_path: Path, limits: fetch.FetchLimits = LIMITS) -> pages.PageMedia:
    return pages.download(url, tmp_path / "out", limits, max_duration_s=3600)


def test_hls_page_downloads_through_the_guard(site: str, tmp_path: Path) -> None:
    got = _download(f"{site}/live", tmp_path)
    assert got.title == "Live"
    assert got.path.stat().st_size > 10_000


@pytest.mark.parametrize("path", ["/private", "/via-redirect"])
def test_media_at_a_private_address_is_refused(site: str, tmp_path: Path, path: str) -> None:
    with pytest.raises(MediaError) as caught:
        _download(site + path, tmp_path)
    assert caught.value.reason == "URL_NOT_PUBLIC"
    assert "127.0.0.1" in caught.value.message
    assert not list((tmp_path / "out").glob("page.*"))


def test_playlists_and_pages_without_media_are_refused(site: str, tmp_path: Path) -> None:
    with pytest.raises(MediaError) as caught:
        _download(f"{site}/two", tmp_path)
    assert caught.value.reason == "PLAYLIST_NOT_SUPPORTED"
    assert "'Two talks' lists 2 videos" in caught.value.message
    with pytest.raises(MediaError) as caught:
        _download(f"{site}/text", tmp_path)
    assert caught.value.reason == "NOT_MEDIA"
    assert "'Just text'" in caught.value.message


def test_the_size_cap_holds_for_pages(site: str, tmp_path: Path) -> None:
    small = fetch.FetchLimits(1000, 30.0, LIMITS.allowed_networks)
    with pytest.raises(MediaError) as caught:
        _download(f"{site}/talk", tmp_path, small)
    assert caught.value.reason == "URL_TOO_LARGE"


async def test_a_page_url_job_keeps_what_the_page_said(api: Api, site: str) -> None:
    request = job_service_pb2.CreateJobRequest(source_uri=f"{site}/talk")
    job = (await api.jobs.CreateJob(request, metadata=api.metadata, timeout=30)).job
    events = await api.watch(job.name)
    final = events[-1].job
    assert final.state == job_pb2.JOB_STATE_SUCCEEDED, final.error
    assert final.source_page.title == "Volcano talk"
    assert (await api.get(job.name)).source_page.title == "Volcano talk"
    assert any("web page" in e.message for e in events)
    transcript = await api.transcript(job.name)
    assert transcript.segments

    # A page with no media fails the job with the page's title.
    request = job_service_pb2.CreateJobRequest(source_uri=f"{site}/text")
    job = (await api.jobs.CreateJob(request, metadata=api.metadata, timeout=30)).job
    final = (await api.watch(job.name))[-1].job
    assert final.state == job_pb2.JOB_STATE_FAILED
    assert final.error.reason == "NOT_MEDIA" and "Just text" in final.error.message
    assert not final.HasField("source_page")


def test_the_proxy_tunnels_only_to_allowed_addresses(site: str) -> None:
    """CONNECT (what https goes through) gets the same check as plain requests."""
    port = int(site.rsplit(":", 1)[1])
    with GuardProxy(LIMITS.allowed_networks, max_bytes=10**6, timeout_s=10) as proxy:
        proxy_port = int(proxy.url.rsplit(":", 1)[1])
        for target, expect in ((f"127.0.0.1:{port}", b"403"), (f"{HOST}:{port}", b"200")):
            with socket.create_connection(("127.0.0.1", proxy_port), timeout=5) as sock:
                sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
                status = sock.recv(4096).split(b"\r\n", 1)[0]
                assert expect in status, (target, status)
                if expect == b"200":
                    # The tunnel reaches the site: a request through it is answered.
                    sock.sendall(f"GET /talk HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
                    assert b"Volcano talk" in _read_all(sock)
        assert [e.reason for e in proxy.state.refused] == ["URL_NOT_PUBLIC"]


def _read_all(sock: socket.socket) -> bytes:
    data = b""
    while b"</html>" not in data:
        block = sock.recv(65536)
        if not block:
            break
        data += block
    return data
