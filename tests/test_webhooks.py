"""Webhooks: signed POSTs of terminal (and stage) events, retried, logged, never harmful."""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from reelscribe import webhooks
from reelscribe.config import Settings
from reelscribe.v1 import job_pb2, job_service_pb2
from tests.support.api import Api, error_details
from tests.support.media import MEDIA_DIR
from tests.support.processes import WorkerProcess
from tests.support.settings import WEBHOOK_SECRET
from tests.support.waiting import wait_for

HOST = "127.0.0.2"


@dataclass
class Receiver:
    """A local webhook receiver that verifies signatures and can misbehave."""

    url: str = ""
    received: list[dict[str, object]] = field(default_factory=list)
    valid: list[bool] = field(default_factory=list)
    #: Status codes to answer with, in order; then 200.
    script: list[int] = field(default_factory=list)
    hang_s: float = 0.0
    #: (job name, event seq, status answered) of every POST, in arrival order.
    answered: list[tuple[str, int, int]] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.valid.append(
                webhooks.verify(WEBHOOK_SECRET, body, self.headers.get(webhooks.HEADER, ""))
            )
            event = json.loads(body)
            with lock:
                state.received.append(event)
                status = state.script.pop(0) if state.script else 200
                state.answered.append((event["job"]["name"], int(event["seq"]), status))
            if state.hang_s:
                time.sleep(state.hang_s)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = http.server.ThreadingHTTPServer((HOST, 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.url = f"http://{HOST}:{server.server_address[1]}/hook"
    yield state
    server.shutdown()


async def _deliveries(api: Api, name: str) -> list[job_service_pb2.WebhookDelivery]:
    reply = await api.jobs.ListWebhookDeliveries(
        job_service_pb2.ListWebhookDeliveriesRequest(name=name), metadata=api.metadata
    )
    return list(reply.deliveries)


async def test_terminal_and_stage_events_are_posted_signed(api: Api, receiver: Receiver) -> None:
    media = await api.upload(MEDIA_DIR / "ocean.ogg")
    job = await api.run(
        media.name, skip_cache=True, callback_uri=receiver.url, callback_stage_events=True
    )
    assert job.state == job_pb2.JOB_STATE_SUCCEEDED

    async def terminal_received() -> bool:
        return any(r["job"]["state"] == "JOB_STATE_SUCCEEDED" for r in receiver.received)

    await wait_for(terminal_received, interval_s=0.1)
    assert all(receiver.valid)
    kinds = {r["kind"] for r in receiver.received}
    assert {"JOB_EVENT_KIND_STAGE_STARTED", "JOB_EVENT_KIND_STATE_CHANGED"} <= kinds
    assert all(r["job"]["name"] == job.name for r in receiver.received)
    log = await _deliveries(api, job.name)
    assert log and all(d.delivered and d.http_status == 200 and d.attempt == 1 for d in log)
    # A forged signature does not verify.
    assert not webhooks.verify("wrong-secret", b"{}", webhooks.sign(WEBHOOK_SECRET, b"{}"))


async def test_failing_receiver_is_retried_then_recorded(api: Api, receiver: Receiver) -> None:
    receiver.script = [500, 503]
    media = await api.upload(MEDIA_DIR / "ocean.ogg")
    job = await api.run(media.name, callback_uri=receiver.url)

    async def delivered() -> bool:
        return any(d.delivered for d in await _deliveries(api, job.name))

    await wait_for(delivered, interval_s=0.1)
    log = await _deliveries(api, job.name)
    assert [(d.attempt, d.http_status, d.delivered) for d in log] == [
        (1, 500, False),
        (2, 503, False),
        (3, 200, True),
    ]
    assert "HTTP 500" in log[0].error
    assert (await api.get(job.name)).state == job_pb2.JOB_STATE_SUCCEEDED


async def test_hanging_receiver_gives_up_without_touching_the_job(
    api: Api, receiver: Receiver
) -> None:
    receiver.hang_s = 2.0  # longer than the test workers' 1 s webhook timeout
    media = await api.upload(MEDIA_DIR / "ocean.ogg")
    job = await api.run(media.name, callback_uri=receiver.url)

    async def gave_up() -> bool:
        return len(await _deliveries(api, job.name)) == 3

    await wait_for(gave_up, timeout_s=30, interval_s=0.1)
    log = await _deliveries(api, job.name)
    assert not any(d.delivered for d in log)
    assert all(d.http_status == 0 and d.error for d in log)
    assert (await api.get(job.name)).state == job_pb2.JOB_STATE_SUCCEEDED


def _posted(event: job_pb2.JobEvent) -> bool:
    """Whether a job with `callback_stage_events` has this event POSTed."""
    stage_kinds = (job_pb2.JOB_EVENT_KIND_STAGE_STARTED, job_pb2.JOB_EVENT_KIND_STAGE_FINISHED)
    terminal = (
        event.kind == job_pb2.JOB_EVENT_KIND_STATE_CHANGED
        and event.job.state == job_pb2.JOB_STATE_SUCCEEDED
    )
    return event.kind in stage_kinds or terminal


@pytest.fixture
def more_senders(settings: Settings, data_dir: Path) -> Iterator[None]:
    """Two more worker processes draining the outbox (on a queue of their own,
    so they take no job): with the session worker, three senders at once."""
    procs = []
    for _ in range(2):
        queue = f"senders-{uuid.uuid4().hex[:8]}"
        proc = WorkerProcess(
            settings.model_copy(update={"queue_name": queue}), data_dir / f"{queue}.log", threads=1
        )
        proc.start()
        procs.append(proc)
    yield
    for proc in procs:
        proc.stop()


async def test_each_jobs_deliveries_arrive_in_seq_order(
    api: Api, receiver: Receiver, more_senders: None
) -> None:
    # The first POST fails: that event is retried (after a backoff), and the
    # job's later events wait for it. Slow answers keep several senders busy.
    receiver.script = [500]
    receiver.hang_s = 0.05
    media = await api.upload(MEDIA_DIR / "ocean.ogg")
    options = {
        "skip_cache": True,
        "callback_uri": receiver.url,
        "callback_stage_events": True,
        "extra_stages": [job_pb2.STAGE_ANALYZE],
    }
    jobs = await asyncio.gather(*(api.create(media.name, **options) for _ in range(3)))
    ends = await asyncio.gather(*(api.watch(job.name) for job in jobs))
    assert all(e[-1].job.state == job_pb2.JOB_STATE_SUCCEEDED for e in ends)

    last_seq = {job.name: end[-1].seq for job, end in zip(jobs, ends, strict=True)}

    async def terminal_events_delivered() -> bool:
        done = {(n, seq) for n, seq, status in receiver.answered if status == 200}
        return all((name, seq) in done for name, seq in last_seq.items())

    await wait_for(terminal_events_delivered, timeout_s=60, interval_s=0.2)
    assert all(receiver.valid)
    failed = [(n, seq) for n, seq, status in receiver.answered if status != 200]
    assert len(failed) == 1
    for job, end in zip(jobs, ends, strict=True):
        posts = [(seq, status) for n, seq, status in receiver.answered if n == job.name]
        seqs = [seq for seq, _ in posts]
        # In order: a retry comes right after its failure, before anything later.
        assert seqs == sorted(seqs), posts
        delivered = [seq for seq, status in posts if status == 200]
        assert delivered == sorted(set(delivered)), posts
        # Every stage event and the terminal one, each delivered once.
        assert delivered == [e.seq for e in end if e.seq and _posted(e)], posts
    # The failed delivery was retried and then delivered.
    name, seq = failed[0]
    log = await _deliveries(api, name)
    assert [(d.attempt, d.http_status) for d in log if d.event_seq == seq] == [(1, 500), (2, 200)]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://169.254.169.254/",
        "http://192.168.1.10/hook",
        "gopher://example.com/",
    ],
)
async def test_webhooks_to_private_addresses_are_refused(api: Api, url: str) -> None:
    media = await api.upload(MEDIA_DIR / "ocean.ogg")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await api.create(media.name, callback_uri=url)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_details(err.value)["BadRequest"].field_violations[0].field == (
        "options.callback_uri"
    )
