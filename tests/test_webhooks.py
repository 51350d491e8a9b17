"""Webhooks: signed POSTs of terminal (and stage) events, retried, logged, never harmful."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import grpc
import pytest

from reelscribe import webhooks
from reelscribe.v1 import job_pb2, job_service_pb2
from tests.support.api import Api, error_details
from tests.support.media import MEDIA_DIR
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


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.valid.append(
                webhooks.verify(WEBHOOK_SECRET, body, self.headers.get(webhooks.HEADER, ""))
            )
            state.received.append(json.loads(body))
            if state.hang_s:
                time.sleep(state.hang_s)
            status = state.script.pop(0) if state.script else 200
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
