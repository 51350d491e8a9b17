"""Crafted media: playlists in disguise, deep truncation, unsupported codecs."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import av
import grpc
import pytest

from tests.support.api import Api, error_details
from tests.support.media import MEDIA_DIR
from tests.support.mediagen import speech_samples, write_video


@pytest.fixture
def canary() -> Iterator[tuple[str, list[str]]]:
    """An HTTP server that records every request a decoder might make."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = http.server.ThreadingHTTPServer(("127.0.0.2", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.2:{server.server_address[1]}", hits
    server.shutdown()


def _mpegts_segment(path: Path) -> Path:
    with (
        av.open(str(MEDIA_DIR / "ocean.ogg")) as src,
        av.open(str(path), "w", format="mpegts") as out,
    ):
        stream = out.add_stream("mp2", rate=48000)
        for frame in src.decode(audio=0):
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


async def test_playlists_disguised_as_mp4_fetch_and_read_nothing(
    api: Api, tmp_path: Path, canary: tuple[str, list[str]]
) -> None:
    url, hits = canary
    segment = _mpegts_segment(tmp_path / "seg.ts")
    for target in (f"{url}/segment.ts", f"file://{segment}", "file:///etc/passwd"):
        playlist = f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n{target}\n#EXT-X-ENDLIST\n"
        media = await api.upload_bytes(playlist.encode(), "movie.mp4")
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await api.create(media.name)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, target
        assert error_details(err.value)["ErrorInfo"].reason == "NOT_MEDIA"
    assert hits == []


async def test_deeply_truncated_video_is_refused(api: Api, tmp_path: Path) -> None:
    speech = speech_samples(MEDIA_DIR / "ocean.ogg")
    video = write_video(tmp_path / "talk.mp4", len(speech) / 16000, speech).read_bytes()
    for keep in (16, 512, 4096):
        media = await api.upload_bytes(video[:keep], "talk.mp4")
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await api.create(media.name)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, keep
