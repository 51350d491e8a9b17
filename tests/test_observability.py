"""Metrics, logs and traces: scraped, read and followed across processes for real.

Long on purpose: what operators see (metrics, traces, logs, and backing
services failing as UNAVAILABLE) is checked here against real processes, in
independent sections; a section that grows should become its own module.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest
import structlog
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from reelscribe import db, errors, logs, queue, redis_client
from reelscribe.config import Settings
from reelscribe.v1 import job_pb2, job_service_pb2
from server.app import ServerApp
from tests.support.api import Api, error_details
from tests.support.jobs import frozen_job
from tests.support.media import MEDIA_DIR
from tests.support.metrics import fetch_metrics, scrape, value
from tests.support.ports import free_port
from tests.support.processes import WorkerProcess, start_server_process
from tests.support.tokens import token_for
from tests.support.waiting import wait_for

StartServer = Callable[..., Awaitable[ServerApp]]


# -- server metrics ---------------------------------------------------------------------


async def test_rpcs_are_counted_and_timed_by_method_and_code(
    extra_server: StartServer, user: str
) -> None:
    app = await extra_server(metrics_port=free_port())
    assert app.metrics_port
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        api = Api(channel, token_for(user))
        before = await scrape(app.metrics_port)
        with pytest.raises(grpc.aio.AioRpcError):
            await api.get(f"jobs/{uuid.uuid4()}")
        for _ in range(2):
            await api.jobs.ListJobs(job_service_pb2.ListJobsRequest(), metadata=api.metadata)
        with pytest.raises(grpc.aio.AioRpcError):
            await Api(channel, "not-a-token").get(f"jobs/{uuid.uuid4()}")
        after = await scrape(app.metrics_port)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    job_service = {"grpc_service": "reelscribe.v1.JobService", "grpc_type": "unary"}
    assert delta("grpc_server_handled_total", grpc_method="GetJob", grpc_code="NOT_FOUND") == 1
    assert (
        delta("grpc_server_handled_total", grpc_method="GetJob", grpc_code="UNAUTHENTICATED") == 1
    )
    assert delta("grpc_server_handled_total", grpc_method="ListJobs", grpc_code="OK") == 2
    assert delta("grpc_server_started_total", grpc_method="ListJobs", **job_service) == 2
    # The latency histogram: a count and a +Inf bucket per method and code.
    assert delta("grpc_server_handling_seconds_count", grpc_method="ListJobs", grpc_code="OK") == 2
    assert (
        delta(
            "grpc_server_handling_seconds_bucket",
            grpc_method="GetJob",
            grpc_code="NOT_FOUND",
            le="+Inf",
        )
        == 1
    )
    assert delta("grpc_server_handling_seconds_sum", grpc_method="ListJobs", grpc_code="OK") > 0
    # Process metrics come along.
    assert value(after, "process_resident_memory_bytes") > 0


async def test_streams_jobs_by_state_and_queue_depth(
    extra_server: StartServer, user: str, settings: Settings, idle_queue: str
) -> None:
    app = await extra_server(metrics_port=free_port(), queue_name=idle_queue)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        api = Api(channel, token_for(user))
        media = await api.upload(MEDIA_DIR / "ocean.ogg")
        job = await api.create(media.name, skip_cache=True)
        assert job.state == job_pb2.JOB_STATE_QUEUED
        async with frozen_job(settings, job.name) as conn:
            watch = api.jobs.WatchJob(
                job_service_pb2.WatchJobRequest(name=job.name), metadata=api.metadata
            )
            await watch.read()  # the snapshot: the stream is open
            samples = await scrape(app.metrics_port)
            total = await conn.fetchval("SELECT count(*) FROM jobs")
        assert value(samples, "reelscribe_server_active_streams", grpc_method="WatchJob") == 1
        assert value(samples, "reelscribe_queue_messages", queue=idle_queue, state="ready") == 1
        assert value(samples, "reelscribe_queue_messages", queue=idle_queue, state="dead") == 0
        assert value(samples, "reelscribe_jobs", state="QUEUED") >= 1
        assert value(samples, "reelscribe_jobs") == total
        for state in ("RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"):
            assert ("reelscribe_jobs", frozenset({("state", state)})) in samples
        watch.cancel()
        await asyncio.sleep(0.3)
        samples = await scrape(app.metrics_port)
        assert value(samples, "reelscribe_server_active_streams", grpc_method="WatchJob") == 0
        await api.cancel(job.name)


async def test_a_port_in_use_leaves_the_server_running(
    extra_server: StartServer, user: str
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        app = await extra_server(metrics_port=taken.getsockname()[1])
        assert app.metrics_port == 0
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
            reply = await Api(channel, token_for(user)).jobs.ListJobs(
                job_service_pb2.ListJobsRequest(), metadata=Api(channel, token_for(user)).metadata
            )
            assert list(reply.jobs) == []


# -- traces and worker metrics, across processes ---------------------------------------------


class _Switchable(SimpleSpanProcessor):
    """Records only while a test asks for it (the provider outlives the test)."""

    enabled = False

    def on_end(self, span: ReadableSpan) -> None:
        if self.enabled:
            super().on_end(span)


_RECORDER: tuple[InMemorySpanExporter, _Switchable] | None = None


@pytest.fixture
def server_spans() -> Iterator[InMemorySpanExporter]:
    """Spans finished in this (the server's) process while the test runs."""
    global _RECORDER
    if _RECORDER is None:
        exporter = InMemorySpanExporter()
        processor = _Switchable(exporter)
        provider = TracerProvider()
        provider.add_span_processor(processor)
        trace.set_tracer_provider(provider)
        _RECORDER = (exporter, processor)
    exporter, processor = _RECORDER
    exporter.clear()
    processor.enabled = True
    yield exporter
    processor.enabled = False
    exporter.clear()


def _spans_in(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
async def traced_worker(
    settings: Settings, tmp_path: Path, idle_queue: str
) -> AsyncIterator[tuple[WorkerProcess, int, Path, Path]]:
    """A worker of its own on `idle_queue`, exporting metrics and spans to a file."""
    port = free_port()
    spans = tmp_path / "worker-spans.jsonl"
    log_path = tmp_path / "worker.log"
    worker = WorkerProcess(
        settings,
        log_path,
        extra_env={
            "REELSCRIBE_QUEUE_NAME": idle_queue,
            "REELSCRIBE_WORKER_METRICS_PORT": str(port),
            "REELSCRIBE_WORKER_METRICS_DIR": str(tmp_path / "metrics"),
            "REELSCRIBE_OTEL_TRACES_FILE": str(spans),
            "REELSCRIBE_LOG_FORMAT": "json",
        },
        threads=1,
    )
    worker.start()
    yield worker, port, spans, log_path
    worker.stop()


async def test_one_trace_from_create_job_through_every_stage_and_worker_metrics(
    extra_server: StartServer,
    user: str,
    idle_queue: str,
    server_spans: InMemorySpanExporter,
    traced_worker: tuple[WorkerProcess, int, Path, Path],
) -> None:
    _, port, spans_path, log_path = traced_worker
    # The exporter starts once every worker process consumes; wait for it so that
    # our job is taken at once (see `frozen_job` on other workers' reconcilers).
    await wait_for(lambda: fetch_metrics(port), timeout_s=60, ignore=(OSError, ValueError))
    app = await extra_server(queue_name=idle_queue)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        api = Api(channel, token_for(user))
        media = await api.upload(MEDIA_DIR / "ocean.ogg")
        job = await api.create(media.name, skip_cache=True)
        final = (await api.watch(job.name))[-1].job
    assert final.state == job_pb2.JOB_STATE_SUCCEEDED
    job_id = job.name.removeprefix("jobs/")

    created = [s for s in server_spans.get_finished_spans() if s.name.endswith("/CreateJob")]
    assert len(created) == 1
    rpc = created[0]
    assert rpc.attributes is not None and rpc.attributes["rpc.method"] == "CreateJob"
    assert rpc.attributes["rpc.grpc.status_code"] == 0
    trace_id = f"0x{rpc.context.trace_id:032x}"
    # The enqueue of the first message is a child of the RPC, in this process.
    # (A clip that fits one chunk: one message, its chunk and merge run in place.)
    enqueued = [
        s for s in server_spans.get_finished_spans() if s.name == "enqueue prepare_short_job"
    ]
    assert enqueued and enqueued[0].context.trace_id == rpc.context.trace_id
    wanted = {"stage short_job", "stage transcribe", "stage merge"}

    def worker_stages() -> set[str]:
        names = {s["name"] for s in _spans_in(spans_path) if s["context"]["trace_id"] == trace_id}
        return names if wanted <= names else set()

    await wait_for(worker_stages, ignore=(OSError, ValueError))
    stage_spans = {
        s["name"]: s
        for s in _spans_in(spans_path)
        if s["context"]["trace_id"] == trace_id and s["name"].startswith("stage ")
    }
    assert all(s["attributes"]["reelscribe.job_id"] == job_id for s in stage_spans.values())
    message = stage_spans["stage short_job"]
    assert message["kind"] == "SpanKind.CONSUMER"
    # The message's span continues the trace exactly where the RPC left it.
    assert message["parent_id"] == f"0x{rpc.context.span_id:016x}" or message["parent_id"] in {
        f"0x{s.context.span_id:016x}" for s in enqueued
    }
    assert message["resource"]["attributes"]["service.name"] == "reelscribe-worker"
    # The stages it ran in place are its children.
    for inner in ("stage transcribe", "stage merge"):
        assert stage_spans[inner]["kind"] == "SpanKind.INTERNAL"
        assert stage_spans[inner]["parent_id"] == message["context"]["span_id"]

    # Worker metrics: ours (stage durations) and Dramatiq's, from one endpoint.
    deadline = time.monotonic() + 20
    while True:
        try:
            samples = await scrape(port)
            if value(samples, "reelscribe_stage_duration_seconds_count", stage="merge") >= 1:
                break
        except OSError:
            pass
        assert time.monotonic() < deadline, "worker metrics endpoint did not answer"
        await asyncio.sleep(0.3)
    for stage in ("short_job", "transcribe", "merge"):
        assert (
            value(samples, "reelscribe_stage_duration_seconds_count", stage=stage, outcome="ok")
            >= 1
        )
    assert (
        value(
            samples,
            "dramatiq_messages_total",
            queue_name=queue.queue_for(idle_queue, queue.PREPARE_SHORT_JOB),
            actor_name=queue.PREPARE_SHORT_JOB,
        )
        >= 1
    )
    # No message of its own for the chunk or the merge.
    merges = queue.queue_for(idle_queue, queue.MERGE_JOB)
    assert value(samples, "dramatiq_messages_total", queue_name=merges, actor_name="merge_job") == 0
    assert value(samples, "reelscribe_stage_redeliveries_total") == 0
    # The cost counter is exported by workers too.
    assert value(samples, "reelscribe_cost_usd_total") > 0

    # The worker's JSON log lines carry the job, the stage and the trace.
    lines = [
        json.loads(line)
        for line in log_path.read_text().splitlines()
        if line.startswith("{") and job_id in line
    ]
    merge_lines = [r for r in lines if r.get("stage") == "merge"]
    assert merge_lines and all(r["job_id"] == job_id for r in merge_lines)
    assert all(r.get("trace_id") == trace_id.removeprefix("0x") for r in merge_lines)


# -- logs -------------------------------------------------------------------------------


async def test_server_logs_are_json_with_ids_and_no_token(
    settings: Settings, tmp_path: Path, user: str
) -> None:
    log_path = tmp_path / "server.log"
    proc, port = await start_server_process(settings, log_path)
    try:
        token = token_for(user)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            api = Api(channel, token)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await api.jobs.GetJob(
                    job_service_pb2.GetJobRequest(name=f"jobs/{uuid.uuid4()}"),
                    metadata=(*api.metadata, ("x-request-id", "req-logs-1")),
                )
            assert err.value.code() == grpc.StatusCode.NOT_FOUND
            assert error_details(err.value)["ErrorInfo"].metadata["request_id"] == "req-logs-1"
            # A token that fails verification is not logged either.
            bad = token[:-4] + "AAAA"
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await Api(channel, bad).get(f"jobs/{uuid.uuid4()}")
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
    text = log_path.read_text()
    records = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert records, text
    failed = [r for r in records if r.get("request_id") == "req-logs-1"]
    assert len(failed) == 1
    line = failed[0]
    assert line["event"] == "call failed"
    assert line["user_id"] == user
    assert line["method"] == "/reelscribe.v1.JobService/GetJob"
    assert line["code"] == "NOT_FOUND" and line["level"] == "info"
    assert "timestamp" in line
    unauthenticated = [r for r in records if r.get("code") == "UNAUTHENTICATED"]
    assert unauthenticated and "user_id" not in unauthenticated[0]
    # Not the token, nor any piece of it that identifies it.
    assert token not in text and bad not in text
    assert token.split(".")[2] not in text and token.split(".")[1] not in text


def _render(json_lines: bool = True, **event: Any) -> str:
    out = io.StringIO()
    logger = structlog.wrap_logger(
        structlog.PrintLogger(out),
        processors=[*logs.shared_processors(), logs.renderer(json_lines)],
    )
    logger.info(event.pop("event", "something"), **event)
    return out.getvalue()


JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6MTl9."
    "c2lnbmF0dXJlLXN0cmluZy1oZXJl"
)


def test_redaction_masks_sensitive_keys_and_secrets_in_strings() -> None:
    line = json.loads(
        _render(
            event=f"headers were authorization: Bearer {JWT}",
            authorization=f"Bearer {JWT}",
            headers={"Authorization": "Bearer abc", "x-api-key": "k-123", "accept": "json"},
            jwt_secret="s3cr3t",
            password="hunter2",
            gemini_api_key="AIzaSyA-123456789012345678901234567890",
            database_url="postgresql://reelscribe:pg-pass@db:5432/reelscribe",
            redis="redis://:redis-pass@redis:6379/0",
            url="https://generativelanguage.googleapis.com/v1/m?key=AIzaSyB12345678901234567890&x=1",
            loose=f"token {JWT} in text",
            provider_tokens=1234,
            request_id="r-1",
            items=[f"Bearer {JWT}", 3],
        )
    )
    text = json.dumps(line)
    for secret in (JWT, "abc", "k-123", "s3cr3t", "hunter2", "pg-pass", "redis-pass", "AIzaSy"):
        assert secret not in text, secret
    assert line["authorization"] == logs.REDACTED
    assert line["headers"]["accept"] == "json"
    assert line["database_url"] == f"postgresql://reelscribe:{logs.REDACTED}@db:5432/reelscribe"
    assert line["redis"] == f"redis://:{logs.REDACTED}@redis:6379/0"
    assert line["url"].endswith(f"?key={logs.REDACTED}&x=1")
    assert line["event"] == f"headers were authorization: Bearer {logs.REDACTED}"
    assert line["loose"] == f"token {logs.REDACTED} in text"
    # Counts under a "token" key are not secrets; ordinary fields are untouched.
    assert line["provider_tokens"] == 1234
    assert line["request_id"] == "r-1"
    assert line["items"] == [f"Bearer {logs.REDACTED}", 3]


def test_redaction_covers_tracebacks_and_stdlib_records() -> None:
    out = io.StringIO()
    logger = structlog.wrap_logger(
        structlog.PrintLogger(out),
        processors=[*logs.shared_processors(), logs.renderer(True)],
    )
    try:
        raise ConnectionError("could not reach postgresql://app:tb-secret@db/app")
    except ConnectionError:
        logger.exception("boom")
    line = json.loads(out.getvalue())
    assert "tb-secret" not in line["exception"] and "ConnectionError" in line["exception"]

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.stdlib_formatter(json=True))
    library = logging.getLogger("tests.some_library")
    library.propagate = False
    library.addHandler(handler)
    try:
        library.warning("retrying %s", f"redis://user:lib-secret@r:6379 with Bearer {JWT}")
    finally:
        library.removeHandler(handler)
    record = json.loads(stream.getvalue())
    assert record["logger"] == "tests.some_library" and record["level"] == "warning"
    assert "lib-secret" not in record["event"] and JWT not in record["event"]


def test_console_rendering_is_redacted_too() -> None:
    text = _render(json_lines=False, event="login", password="hunter2", note=f"Bearer {JWT}")
    assert "hunter2" not in text and JWT not in text and "login" in text


# -- backing services unavailable: UNAVAILABLE, never INTERNAL ------------------------------


async def _connect_error(**kwargs: Any) -> BaseException:
    try:
        conn = await asyncpg.connect(timeout=3, **kwargs)
    except BaseException as exc:
        return exc
    await conn.close()
    raise AssertionError("connected")


async def test_connection_failures_are_translated_unavailable(
    tmp_path: Path, settings: Settings
) -> None:
    # Real failures from the client libraries, where they happen: getting a
    # connection from a pool whose Postgres is unreachable...
    refused = await _connect_error(host="127.0.0.1", port=free_port(), user="x")
    missing_socket = await _connect_error(host=str(tmp_path), port=5432, user="x")
    assert isinstance(missing_socket, OSError)
    for url, direct in (
        (f"postgresql://x@127.0.0.1:{free_port()}/x", refused),
        (f"postgresql://x@/x?host={tmp_path}&port=5432", missing_socket),
    ):
        unreachable = await db.create_pool(url, min_size=0)
        try:
            with pytest.raises(errors.Unavailable) as err:
                async with unreachable.acquire():
                    raise AssertionError("connected")
            assert isinstance(err.value.__cause__, type(direct)), repr(err.value.__cause__)
        finally:
            await unreachable.close()
    # ... a Redis command and an enqueue while Redis is away ...
    redis_down = redis_client.connect(f"redis://127.0.0.1:{free_port()}")
    try:
        with pytest.raises(errors.Unavailable) as err:
            await redis_down.ping()
        assert isinstance(err.value.__cause__, redis_client.CONNECTION_ERRORS)
    finally:
        await redis_down.aclose()
    broker = queue.make_broker(f"redis://127.0.0.1:{free_port()}")
    try:
        jq = queue.JobQueue(broker, f"unit-{uuid.uuid4().hex[:8]}")
        with pytest.raises(errors.Unavailable) as err:
            await jq.enqueue(queue.PREPARE_JOB, uuid.uuid4())
        assert err.value.__cause__ is not None
    finally:
        broker.close()
    # ... and a connection lost inside a block.
    pool = await db.create_pool(settings.database_url, max_size=1)
    try:
        for exc in (
            refused,
            asyncpg.exceptions.ConnectionDoesNotExistError("gone"),
            asyncpg.exceptions.CannotConnectNowError("starting up"),
            asyncpg.exceptions.AdminShutdownError("terminating connection"),
            asyncpg.exceptions.TooManyConnectionsError("too many clients"),
            asyncpg.exceptions.InterfaceError("pool is closing"),
            ConnectionRefusedError(111, "refused"),
            TimeoutError(),
        ):
            with pytest.raises(errors.Unavailable) as err:
                async with pool.acquire():
                    raise exc
            assert err.value.__cause__ is exc, repr(exc)
        # A wrapper raised from a connection error is one too.
        with pytest.raises(errors.Unavailable):
            async with pool.acquire():
                raise RuntimeError("query failed") from refused
        # Text Postgres cannot store is the caller's mistake, whichever field carried it.
        with pytest.raises(errors.InvalidArgument) as invalid:
            async with pool.acquire() as conn:
                await conn.execute("SELECT $1::text", "nul\x00")
        assert invalid.value.reason == "NUL_CHARACTER"
        # Our own bugs stay what they are (INTERNAL): a missing file, a value
        # error, a constraint violation.
        for bug in (
            FileNotFoundError(2, "missing", str(tmp_path / "missing")),
            ValueError("bug"),
            asyncpg.exceptions.UniqueViolationError("duplicate"),
        ):
            with pytest.raises(type(bug)) as raised:
                async with pool.acquire():
                    raise bug
            assert raised.value is bug
        # The pool still serves after all of that.
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT 1") == 1
    finally:
        await pool.close()


async def test_a_lost_database_is_unavailable_with_retry_info(
    extra_server: StartServer, user: str
) -> None:
    app = await extra_server()
    await app.deps.pool.close()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await Api(channel, token_for(user)).get(f"jobs/{uuid.uuid4()}")
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    details = error_details(err.value)
    assert details["ErrorInfo"].reason == "UNAVAILABLE"
    assert details["RetryInfo"].retry_delay.seconds >= 1


def test_json_lines_exporter_writes_one_line_per_span(tmp_path: Path) -> None:
    from reelscribe.tracing import JsonLinesSpanExporter

    path = tmp_path / "spans.jsonl"
    exporter = JsonLinesSpanExporter(str(path))
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("outer"), tracer.start_as_current_span("inner"):
        pass
    provider.shutdown()
    spans = _spans_in(path)
    assert [s["name"] for s in spans] == ["inner", "outer"]
    assert spans[0]["parent_id"] == spans[1]["context"]["span_id"]


def test_stage_middleware_times_stages_binds_context_and_counts_redeliveries(
    settings: Settings, server_spans: InMemorySpanExporter
) -> None:
    import dramatiq

    from reelscribe import metrics
    from reelscribe.queue import JobQueue, make_broker
    from workers.observability import StageObservability

    broker = make_broker(settings.redis_url)
    middleware = StageObservability()
    job_id = uuid.uuid4()
    seen: list[dict[str, Any]] = []

    def deliver(message: dramatiq.Message[None], *, crash: bool = False) -> None:
        middleware.before_process_message(broker, message)
        seen.append(structlog.contextvars.get_contextvars())
        if not crash:  # a crashed worker never reaches `after_process_message`
            middleware.after_process_message(broker, message)
        else:  # the thread died with it; only tidy this test thread's context up
            _, token, _, _ = middleware._local.state
            middleware._local.state = None
            otel_context.detach(token)
            structlog.contextvars.unbind_contextvars("job_id", "stage", "message_id")

    def count(stage: str, kind: str) -> float:
        return metrics.STAGE_REDELIVERIES.labels(stage, kind)._value.get()

    def durations(stage: str) -> float:
        return value(
            {
                (s.name, frozenset(s.labels.items())): s.value
                for s in next(iter(metrics.STAGE_DURATION.collect())).samples
            },
            "reelscribe_stage_duration_seconds_count",
            stage=stage,
        )

    try:
        with trace.get_tracer("test").start_as_current_span("CreateJob") as rpc:
            message = JobQueue(broker, f"unit-{uuid.uuid4().hex[:8]}").message(
                "transcribe_chunk", job_id, 3
            )
        message = message.copy(options={**message.options, "redis_message_id": str(uuid.uuid4())})
        before = (count("transcribe", "redelivered"), count("transcribe", "retry"))
        timed = durations("transcribe")
        deliver(message, crash=True)
        deliver(message)  # the same broker message again: its first worker vanished
        deliver(message)  # finished last time: a fresh delivery is not a redelivery
        deliver(message.copy(options={**message.options, "retries": 1}))
        assert count("transcribe", "redelivered") - before[0] == 1
        assert count("transcribe", "retry") - before[1] == 1
        assert durations("transcribe") - timed == 3
        assert seen[0]["job_id"] == str(job_id) and seen[0]["stage"] == "transcribe"
        assert "job_id" not in structlog.contextvars.get_contextvars()
        stage_spans = [s for s in server_spans.get_finished_spans() if s.name == "stage transcribe"]
        assert len(stage_spans) == 3
        assert all(s.context.trace_id == rpc.get_span_context().trace_id for s in stage_spans)
        assert stage_spans[0].attributes is not None
        assert stage_spans[0].attributes["reelscribe.chunk"] == 3
    finally:
        broker.close()
