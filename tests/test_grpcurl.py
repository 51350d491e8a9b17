"""The debugging path operators use: the real grpcurl binary against a running server.

Reflection must serve every method and message with its comments, resolve
method symbols, and carry the `google.rpc` types so error details decode.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from pathlib import Path

import pytest

from server.app import ServerApp
from tests.support.api import Api
from tests.support.media import MEDIA_DIR
from tests.support.tokens import token_for

GRPCURL = shutil.which("grpcurl") or str(Path(sys.executable).parent / "grpcurl")


async def _grpcurl(
    server: ServerApp, *tail: str, data: str | None = None, token: str = ""
) -> tuple[int, str, str]:
    """`grpcurl -plaintext [-H auth] [-d data] ADDRESS TAIL...`."""
    flags = ["-H", f"authorization: Bearer {token}"] if token else []
    if data is not None:
        flags += ["-d", data]
    proc = await asyncio.create_subprocess_exec(
        GRPCURL, "-plaintext", *flags, f"127.0.0.1:{server.port}", *tail,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def _ok(server: ServerApp, *tail: str, data: str | None = None, token: str = "") -> str:
    code, out, err = await _grpcurl(server, *tail, data=data, token=token)
    assert code == 0, err
    return out


async def test_list_shows_every_service(server: ServerApp) -> None:
    services = set((await _ok(server, "list")).split())
    assert {
        "reelscribe.v1.JobService",
        "reelscribe.v1.TranscriptService",
        "reelscribe.v1.SearchService",
        "grpc.health.v1.Health",
    } <= services


async def test_describe_a_method_shows_its_comment(server: ServerApp) -> None:
    out = await _ok(server, "describe", "reelscribe.v1.JobService.CreateJob")
    assert "rpc CreateJob ( .reelscribe.v1.CreateJobRequest )" in out
    assert "Creates a job. Idempotent per `request_id`." in out


async def test_describe_a_message_shows_field_comments(server: ServerApp) -> None:
    out = await _ok(server, "describe", "reelscribe.v1.JobOptions")
    assert "BCP-47 language of the speech" in out
    service = await _ok(server, "describe", "reelscribe.v1.JobService")
    assert "Returns one job." in service


@pytest.mark.parametrize("symbol", ["google.rpc.ErrorInfo", "google.rpc.BadRequest"])
async def test_error_detail_types_are_resolvable(server: ServerApp, symbol: str) -> None:
    assert f"message {symbol.rsplit('.', 1)[1]}" in await _ok(server, "describe", symbol)


async def test_unary_call_stream_and_decoded_error_details(
    server: ServerApp, api: Api, user: str
) -> None:
    token = token_for(user)
    job = await api.create((await api.upload(MEDIA_DIR / "volcano.ogg")).name)
    listed = json.loads(
        await _ok(server, "reelscribe.v1.JobService/ListJobs", data='{"page_size": 5}', token=token)
    )
    assert [j["name"] for j in listed["jobs"]] == [job.name]

    watched = await _ok(
        server,
        "reelscribe.v1.JobService/WatchJob",
        data=json.dumps({"name": job.name}),
        token=token,
    )
    decoder, events, pos = json.JSONDecoder(), [], 0
    text = watched.strip()
    while pos < len(text):
        event, pos = decoder.raw_decode(text, pos)
        events.append(event["event"])
        pos = len(text) - len(text[pos:].lstrip())
    assert events[-1]["job"]["state"] == "JOB_STATE_SUCCEEDED"

    code, _, err = await _grpcurl(
        server,
        "reelscribe.v1.JobService/GetJob",
        data='{"name": "jobs/00000000-0000-0000-0000-000000000000"}',
        token=token,
    )
    assert code != 0
    assert "NotFound" in err
    # The ErrorInfo detail is decoded (not base64): its type and reason are readable.
    assert "type.googleapis.com/google.rpc.ErrorInfo" in err
    assert '"reason":"JOB_NOT_FOUND"' in err.replace(" ", "")
