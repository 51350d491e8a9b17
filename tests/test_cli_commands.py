"""The client commands, run as a user runs them (`reelscribe ...` in a subprocess)
against the real stack: every job option, URL sources, child jobs that render
clips, exit codes that say how a followed job ended, and a message when there
is nothing to show."""

from __future__ import annotations

import asyncio
import http.server
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from cli.remote import EXIT_CANCELLED, EXIT_FAILED
from reelscribe.v1 import job_pb2
from server.app import ServerApp
from tests.support.api import Api
from tests.support.media import MEDIA_DIR
from tests.support.mediagen import lecture_wav, write_wav
from tests.support.processes import CLI, client_env
from tests.support.settings import URL_TEST_NETWORK
from tests.support.tokens import token_for

#: The test media server's host: the one non-public address URL sources may reach in tests.
URL_HOST = "127.0.0.2"


class Cli:
    """`reelscribe` as one user, against the test server."""

    def __init__(self, port: int, user: str) -> None:
        self.env = client_env(port, token_for(user))

    def start(self, *args: str) -> subprocess.Popen[str]:
        """Start a command; read its output as it goes."""
        return subprocess.Popen(
            [*CLI, *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    async def __call__(self, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        """Run a command to its end; it must exit with `code`."""
        done = await asyncio.to_thread(
            subprocess.run,
            [*CLI, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == code, f"{args} exited {done.returncode}:\n{done.stderr}"
        return done


@pytest.fixture
def cli(server: ServerApp, user: str) -> Cli:
    return Cli(server.port, user)


class _Media(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/volcano.ogg":
            body, status = (MEDIA_DIR / "volcano.ogg").read_bytes(), 200
        else:
            body, status = b"no", 404
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def media_url() -> Iterator[str]:
    assert URL_TEST_NETWORK.startswith(URL_HOST)
    server = http.server.ThreadingHTTPServer((URL_HOST, 0), _Media)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://{URL_HOST}:{server.server_address[1]}"
    server.shutdown()


def _job_name(out: str) -> str:
    name = out.splitlines()[0]
    assert name.startswith("jobs/"), out
    return name


async def test_submit_sends_every_job_option(cli: Cli, api: Api) -> None:
    request_id = str(uuid.uuid4())
    args = [
        "submit",
        str(MEDIA_DIR / "volcano.ogg"),
        "--language",
        "en",
        "--no-word-timestamps",
        "--skip-cache",
        "--stage",
        "analyze",
        "--highlights",
        "2",
        "--callback",
        f"http://{URL_HOST}:9/hook",
        "--callback-stage-events",
        "--label",
        "team=blue",
        "--label",
        "take=2",
        "--request-id",
        request_id,
        "--watch",
    ]
    out = (await cli(*args)).stdout
    name = _job_name(out)
    assert "succeeded" in out
    job = await api.get(name)
    opts = job.options
    assert opts.language == "en" and opts.disable_word_timestamps and opts.skip_cache
    assert job_pb2.STAGE_ANALYZE in opts.extra_stages and opts.highlight_count == 2
    assert opts.callback_uri == f"http://{URL_HOST}:9/hook" and opts.callback_stage_events
    assert dict(job.labels) == {"team": "blue", "take": "2"}
    # The request id makes the submission idempotent: the same job again.
    assert _job_name((await cli(*args[:-1])).stdout) == name

    shown = (await cli("job", name)).stdout
    for text in (name, "SUCCEEDED", "team=blue", "take=2", "language=en", "skip-cache"):
        assert text in shown, shown
    assert "highlights=2" in shown and "no-word-timestamps" in shown

    # A model the server does not have is refused before uploading: a usage error.
    refused = await cli("submit", str(MEDIA_DIR / "volcano.ogg"), "--model", "huge", code=2)
    assert "not installed" in refused.stderr and "Traceback" not in refused.stderr
    # Options the server refuses reach it: its reasons come back, exit 1.
    refused = await cli("submit", str(MEDIA_DIR / "volcano.ogg"), "--translate-to", "fr", code=1)
    assert "FAILED_PRECONDITION" in refused.stderr or "Gemini" in refused.stderr
    bad = await cli("submit", str(MEDIA_DIR / "volcano.ogg"), "--label", "nolabel", code=2)
    assert "KEY=VALUE" in bad.stderr
    missing = await cli("submit", "no-such-file.mp4", code=2)
    assert "no such file" in missing.stderr


async def test_url_sources_and_exit_codes_of_a_failed_job(cli: Cli, media_url: str) -> None:
    out = (await cli("submit", f"{media_url}/volcano.ogg", "--watch")).stdout
    assert "succeeded" in out
    job = (await cli("job", _job_name(out))).stdout
    assert f"{media_url}/volcano.ogg" in job

    failed = await cli("submit", f"{media_url}/missing", "--watch", code=EXIT_FAILED)
    name = _job_name(failed.stdout)
    assert f"{name} ended FAILED (URL_HTTP_ERROR" in failed.stderr
    # Watching it again says the same.
    again = await cli("watch", name, code=EXIT_FAILED)
    assert "URL_HTTP_ERROR" in again.stderr
    shown = (await cli("job", name)).stdout
    assert "FAILED" in shown and "URL_HTTP_ERROR" in shown
    listed = (await cli("jobs", "--state", "failed")).stdout
    assert listed.splitlines() == [line for line in listed.splitlines() if name in line]


async def test_cancel_ends_a_watch_with_its_own_exit_code_and_delete(
    cli: Cli, tmp_path: Path
) -> None:
    lecture = lecture_wav(tmp_path / "lecture.wav", repeat=4)
    watching = cli.start("submit", str(lecture), "--skip-cache", "--watch")
    assert watching.stdout is not None
    name = (await asyncio.to_thread(watching.stdout.readline)).strip()
    assert name.startswith("jobs/"), name
    cancelled = await cli("cancel", name)
    assert cancelled.stdout.strip() == f"{name} CANCELLED"
    _, err = await asyncio.to_thread(watching.communicate, timeout=120)
    assert watching.returncode == EXIT_CANCELLED, err
    assert f"{name} ended CANCELLED" in err
    await cli("watch", name, code=EXIT_CANCELLED)

    assert (await cli("delete", name)).stdout.strip() == f"deleted {name}"
    gone = await cli("job", name, code=1)
    assert "JOB_NOT_FOUND" in gone.stderr


async def test_upload_usage_and_delete_media(cli: Cli) -> None:
    media = (await cli("upload", str(MEDIA_DIR / "ocean.ogg"))).stdout.strip()
    assert media.startswith("media/") and "\n" not in media
    usage = (await cli("usage")).stdout
    assert "plan" in usage and "storage" in usage and "audio today" in usage
    stored = next(line for line in usage.splitlines() if line.startswith("storage"))
    assert "0 bytes" not in stored

    # Uploaded media can be submitted by name.
    job = _job_name((await cli("submit", media, "--watch")).stdout)
    assert "ocean" in (await cli("transcript", job)).stdout.lower()

    assert (await cli("delete-media", media)).stdout.strip() == f"deleted {media}"
    after = (await cli("usage")).stdout
    assert next(line for line in after.splitlines() if line.startswith("storage")).startswith(
        "storage       0 bytes"
    )
    refused = await cli("submit", media, code=1)
    assert "MEDIA_NOT_FOUND" in refused.stderr


async def test_child_job_renders_clips_and_download_saves_captions(
    cli: Cli, tmp_path: Path
) -> None:
    parent = _job_name((await cli("submit", str(MEDIA_DIR / "volcano.ogg"), "--watch")).stdout)

    # No rendered clips: say so, say how, save nothing, exit non-zero.
    target = tmp_path / "clips"
    refused = await cli("highlights", parent, "--download", str(target), code=1)
    assert f"reelscribe submit --parent {parent} --clips" in refused.stderr
    assert not target.exists() or not any(target.iterdir())

    out = await cli("submit", "--parent", parent, "--clips", "--highlights", "1", "--watch")
    child = _job_name(out.stdout)
    saved = (await cli("highlights", child, "--download", str(target))).stdout
    files = sorted(p.name for p in target.iterdir())
    assert len(files) == 2 and files[1].endswith(".srt"), files
    clip, captions = target / files[0], target / files[1]
    assert clip.stat().st_size > 0 and f"saved {clip}" in saved
    assert captions.stem == clip.stem and f"saved {captions}" in saved
    assert captions.read_text().startswith("1\n00:00:0")

    both = await cli("submit", str(MEDIA_DIR / "volcano.ogg"), "--parent", parent, code=2)
    assert "not both" in both.stderr


async def test_a_message_when_there_is_nothing_to_show(cli: Cli, tmp_path: Path) -> None:
    empty = await cli("jobs")
    assert empty.stdout == "" and "no jobs" in empty.stderr
    none = await cli("search", "zebra crossing")
    assert none.stdout == "" and "no matches" in none.stderr
    costs = await cli("costs")
    assert "no processing" in costs.stderr

    silence = write_wav(tmp_path / "silence.wav", np.zeros(16000 * 3, dtype=np.float32))
    job = _job_name((await cli("submit", str(silence), "--watch")).stdout)
    said = await cli("transcript", job)
    assert said.stdout == "" and "nothing was said" in said.stderr
    highlights = await cli("highlights", job)
    assert "no highlights" in highlights.stderr
    summary = await cli("summary", job)
    assert "(no chapters)" in summary.stdout
    hooks = await cli("deliveries", job)
    assert "no webhook deliveries" in hooks.stderr
    refused = await cli("highlights", job, "--download", str(tmp_path / "clips"), code=1)
    assert "no rendered clips" in refused.stderr
