"""Operator surface: health, reflection, UNIMPLEMENTED, migrations, the CLI."""

from __future__ import annotations

import subprocess

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from reelscribe import db
from reelscribe.config import Settings
from server.app import ServerApp
from tests.support.api import Api
from tests.support.media import MEDIA_DIR
from tests.support.processes import CLI, client_env
from tests.support.tokens import JWT_SECRET, token_for


async def test_health_is_serving_without_a_token(channel: grpc.aio.Channel) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    for service in ("", "reelscribe.v1.JobService"):
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_reflection_lists_and_describes_the_services(channel: grpc.aio.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)

    async def ask(**kwargs: str) -> reflection_pb2.ServerReflectionResponse:
        call = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(**kwargs)]))
        return await anext(aiter(call))

    listed = {s.name for s in (await ask(list_services="")).list_services_response.service}
    assert {
        "reelscribe.v1.JobService",
        "reelscribe.v1.TranscriptService",
        "reelscribe.v1.SearchService",
        "grpc.health.v1.Health",
    } <= listed
    described = await ask(file_containing_symbol="reelscribe.v1.JobService")
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(raw)
        for raw in described.file_descriptor_response.file_descriptor_proto
    ]
    methods = {m.name for f in files for s in f.service for m in s.method}
    assert {"UploadMedia", "CreateJob", "GetJob", "ListJobs", "CancelJob", "WatchJob"} <= methods


async def test_migrations_are_idempotent(server: ServerApp) -> None:
    async with server.deps.pool.acquire() as conn:
        assert await db.apply_migrations(conn) == []
        assert await conn.fetchval("SELECT max(version) FROM schema_migrations") >= 1


async def test_cli_submit_watch_and_transcript(server: ServerApp, settings: Settings) -> None:
    env = client_env(
        server.port,
        token_for("cli-user"),
        REELSCRIBE_JWT_SECRET=JWT_SECRET,
        REELSCRIBE_DATA_DIR=str(settings.data_dir),
    )

    def run(*args: str) -> str:
        done = subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    import asyncio

    out = await asyncio.to_thread(run, "submit", str(MEDIA_DIR / "ocean.ogg"), "--watch")
    job = out.splitlines()[0]
    assert job.startswith("jobs/")
    assert "succeeded" in out and "transcribe" in out
    listed = await asyncio.to_thread(run, "jobs")
    assert job in listed and "SUCCEEDED" in listed
    text = await asyncio.to_thread(run, "transcript", job)
    assert "ocean" in text.lower()
    token = await asyncio.to_thread(run, "token", "--user", "zed")
    assert token.count(".") == 2
    summary = await asyncio.to_thread(run, "summary", job, "--format", "bullets")
    assert summary.startswith("- ") and "Chapters:" in summary
    answer = await asyncio.to_thread(run, "ask", "what covers the surface of the earth")
    assert job in answer
    costs = await asyncio.to_thread(run, "costs")
    assert "audio min" in costs and costs.strip().splitlines()[-1].startswith("total $")


async def test_buf_curl_streams_watch_job_through_reflection(server: ServerApp, api: Api) -> None:
    """The README's `buf curl` command, run for real (buf from npm)."""
    import asyncio
    import json
    from pathlib import Path

    buf = Path(__file__).resolve().parent.parent / "node_modules/.bin/buf"
    if not buf.exists():
        pytest.skip("buf is installed by `make setup` (npm ci)")
    job = await api.run(MEDIA_DIR / "ocean.ogg")
    token = api.metadata[0][1]
    cmd = [
        str(buf),
        "curl",
        "--protocol",
        "grpc",
        "--http2-prior-knowledge",
        "-H",
        f"authorization: {token}",
        "-d",
        json.dumps({"name": job.name, "afterSeq": 0}),
        f"http://127.0.0.1:{server.port}/reelscribe.v1.JobService/WatchJob",
    ]
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    text = out.decode()
    assert '"kind": "JOB_EVENT_KIND_SNAPSHOT"' in text
    assert text.count('"seq":') == job.last_event_seq
    assert '"state": "JOB_STATE_SUCCEEDED"' in text
