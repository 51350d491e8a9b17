"""gRPC-Web beside native gRPC: the same services and rules, spoken from HTTP/1.1.

The calls go on the wire as a browser's would (tests/support/grpcweb.py frames
them by hand) to the session server's gRPC-Web listener, which serves the same
servicer objects through the same interceptor as the native listener.
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import grpc
import pytest
from prometheus_client import REGISTRY
from yarl import URL

from reelscribe.config import Settings
from reelscribe.v1 import job_pb2, job_service_pb2
from server.app import ListenError, ServerApp
from server.web import CorsPolicy, GrpcWebApp, StaticFiles, WebApp, WebListener
from server.web.context import WebServicerContext
from tests.support import ports
from tests.support.api import Api
from tests.support.grpcweb import WebClient, frame, frames
from tests.support.media import MEDIA_DIR
from tests.support.settings import WEB_TEST_ORIGIN
from tests.support.tokens import token_for

JOBS = "reelscribe.v1.JobService"


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as client:
        yield client


@pytest.fixture
def web(server: ServerApp, session: aiohttp.ClientSession, user: str) -> WebClient:
    """gRPC-Web calls as the test's user."""
    return WebClient(session, f"http://{server.web_address}", token_for(user))


async def test_unary_call_answers_as_native_grpc(web: WebClient, api: Api) -> None:
    media = await api.upload(MEDIA_DIR / "ocean.ogg")
    job = await api.create(media.name)
    measured = _handled("GetJob", "unary", grpc.StatusCode.OK)
    reply = await web.call(f"{JOBS}/GetJob", job_service_pb2.GetJobRequest(name=job.name))
    assert reply.http_status == 200
    assert reply.headers["content-type"] == "application/grpc-web+proto"
    assert reply.code == grpc.StatusCode.OK, reply.trailers
    [got] = reply.parsed(job_service_pb2.GetJobResponse)
    assert got.job.name == job.name and got.job.media == media.name
    # The request id comes back as it does natively (trailing metadata).
    assert len(reply.trailers["x-request-id"]) == 32
    # The same interceptor measured it.
    assert _handled("GetJob", "unary", grpc.StatusCode.OK) == measured + 1


async def test_grpc_web_text_is_base64_both_ways(
    web: WebClient, session: aiohttp.ClientSession
) -> None:
    text = "application/grpc-web-text"
    request = base64.b64encode(
        frame(job_service_pb2.ListJobsRequest(page_size=1).SerializeToString())
    )
    async with session.post(
        f"{web.base_url}/{JOBS}/ListJobs",
        data=request,
        headers=web.headers(**{"content-type": text}),
    ) as response:
        assert response.headers["content-type"].startswith(text)
        body = await response.read()
    # Each frame is base64 of its own (padded), so decode them one by one.
    decoded = b"".join(
        base64.b64decode(part + b"=" * (-len(part) % 4)) for part in re.findall(rb"[^=]+=*", body)
    )
    assert decoded[0] == 0  # a message frame, then the trailers
    length = int.from_bytes(decoded[1:5], "big")
    job_service_pb2.ListJobsResponse.FromString(decoded[5 : 5 + length])
    assert decoded[5 + length] == 0x80 and b"grpc-status: 0" in decoded[5 + length :]


async def test_no_token_is_unauthenticated_with_error_details(
    server: ServerApp, session: aiohttp.ClientSession
) -> None:
    anonymous = WebClient(session, f"http://{server.web_address}", None)
    reply = await anonymous.call(
        f"{JOBS}/ListJobs", job_service_pb2.ListJobsRequest(), **{"x-request-id": "web-anon-1"}
    )
    assert reply.code == grpc.StatusCode.UNAUTHENTICATED
    assert reply.trailers_only and not reply.messages
    info = reply.details()["ErrorInfo"]
    assert info.domain == "reelscribe.v1" and info.reason
    assert info.metadata["request_id"] == "web-anon-1" == reply.trailers["x-request-id"]
    assert "token" in reply.message.lower()


async def test_another_users_job_is_not_found(
    web: WebClient, other_api: Api, server: ServerApp
) -> None:
    theirs = await other_api.create((await other_api.upload(MEDIA_DIR / "ocean.ogg")).name)
    reply = await web.call(f"{JOBS}/GetJob", job_service_pb2.GetJobRequest(name=theirs.name))
    assert reply.code == grpc.StatusCode.NOT_FOUND
    assert reply.details()["ErrorInfo"].reason == "JOB_NOT_FOUND"
    # ...exactly as a native call by the same user says it.
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await Api(channel, web.token).get(theirs.name)
    assert err.value.code() == reply.code and err.value.details() == reply.message


def _seqs(events: list[job_pb2.JobEvent]) -> list[int]:
    return [e.seq for e in events if e.seq]


async def test_watch_a_job_to_its_end_then_resume_after_a_drop(web: WebClient, api: Api) -> None:
    job = await api.create((await api.upload(MEDIA_DIR / "ocean.ogg")).name, skip_cache=True)
    request = job_service_pb2.WatchJobRequest(name=job.name)
    # A watch dropped after its first two numbered events (the client goes away)...
    first: list[job_pb2.JobEvent] = []
    async with web.open(f"{JOBS}/WatchJob", request) as response:
        async for flags, payload in frames(response):
            assert not flags & 0x80, payload
            first.append(job_service_pb2.WatchJobResponse.FromString(payload).event)
            if len(_seqs(first)) == 2:
                break
    # ...resumes after the last one it got, to the job's end: exactly the rest.
    request.after_seq = _seqs(first)[-1]
    rest_reply = await web.call(f"{JOBS}/WatchJob", request)
    assert rest_reply.code == grpc.StatusCode.OK, rest_reply.trailers
    rest = [r.event for r in rest_reply.parsed(job_service_pb2.WatchJobResponse)]
    assert rest[0].kind == job_pb2.JOB_EVENT_KIND_SNAPSHOT
    assert rest[-1].job.state == job_pb2.JOB_STATE_SUCCEEDED
    union = _seqs(first) + _seqs(rest)
    # Every event once, in order, and the same log a native watch replays.
    assert union == list(range(1, len(union) + 1))
    assert union == _seqs(await api.watch(job.name))
    # A whole watch of the finished job over gRPC-Web replays that log too.
    request.after_seq = 0
    whole = await web.call(f"{JOBS}/WatchJob", request)
    events = [r.event for r in whole.parsed(job_service_pb2.WatchJobResponse)]
    assert _seqs(events) == union and whole.code == grpc.StatusCode.OK


async def _open_streams(server: ServerApp, user: str, expected: int) -> None:
    """Wait (briefly) until `user` holds `expected` streams on `server`."""
    deadline = time.monotonic() + 5.0
    while server.interceptor.streams_by_user.get(user, 0) != expected:
        assert time.monotonic() < deadline, server.interceptor.streams_by_user.get(user, 0)
        await asyncio.sleep(0.02)


def _handled(method: str, kind: str, code: grpc.StatusCode) -> float:
    """Calls of JobService `method` (of handler `kind`) the server measured as ended with `code`."""
    labels = {"grpc_service": JOBS, "grpc_method": method, "grpc_type": kind}
    count = REGISTRY.get_sample_value(
        "grpc_server_handled_total", labels | {"grpc_code": code.name}
    )
    return count or 0.0


async def test_dropped_stream_frees_its_slot(web: WebClient, server: ServerApp, user: str) -> None:
    cancelled_before = _handled("WatchJobs", "server_stream", grpc.StatusCode.CANCELLED)
    async with web.open(f"{JOBS}/WatchJobs", job_service_pb2.WatchJobsRequest()) as response:
        assert response.status == 200
        await _open_streams(server, user, 1)
        # The first message (a heartbeat, every second here) proves the stream flows.
        _flags, payload = await anext(frames(response))
        assert job_service_pb2.WatchJobsResponse.FromString(payload).event.kind
        # The client drops the connection without a word.
        response.connection.transport.abort()  # type: ignore[union-attr]
    await _open_streams(server, user, 0)
    # ...and the call is measured as the client's cancellation, like a native one.
    assert _handled("WatchJobs", "server_stream", grpc.StatusCode.CANCELLED) == cancelled_before + 1


async def test_stream_deadline_ends_with_deadline_exceeded(
    web: WebClient, server: ServerApp, user: str
) -> None:
    started = time.monotonic()
    reply = await web.call(
        f"{JOBS}/WatchJobs", job_service_pb2.WatchJobsRequest(), **{"grpc-timeout": "1500m"}
    )
    assert reply.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert 1.4 < time.monotonic() - started < 4.0
    assert reply.messages  # heartbeats came first: the status is in the trailers frame
    await _open_streams(server, user, 0)


async def test_client_streaming_is_refused_and_bad_bodies_are_invalid(
    web: WebClient, server: ServerApp, session: aiohttp.ClientSession
) -> None:
    upload = await web.call(f"{JOBS}/UploadMedia", job_service_pb2.UploadMediaRequest())
    assert upload.code == grpc.StatusCode.UNIMPLEMENTED
    assert "AppendUpload" in upload.message
    url = f"http://{server.web_address}/{JOBS}/ListJobs"
    # A body that is not one frame: INVALID_ARGUMENT for a caller with a token...
    async with session.post(url, data=b"\x00\x00\x00", headers=web.headers()) as response:
        assert response.headers["grpc-status"] == str(grpc.StatusCode.INVALID_ARGUMENT.value[0])
    # ...and UNAUTHENTICATED, saying nothing more, for one without.
    anonymous = WebClient(session, web.base_url, None)
    async with session.post(url, data=b"\x00\x00\x00", headers=anonymous.headers()) as response:
        assert response.headers["grpc-status"] == str(grpc.StatusCode.UNAUTHENTICATED.value[0])
    # A method no service has: UNIMPLEMENTED, as natively.
    unknown = await web.call(f"{JOBS}/NoSuchMethod", job_service_pb2.ListJobsRequest())
    assert unknown.code == grpc.StatusCode.UNIMPLEMENTED
    # Not gRPC-Web at all: refused at the HTTP level.
    async with session.post(url, data=b"{}", headers={"content-type": "application/json"}) as r:
        assert r.status == 415


async def test_requests_are_bounded_like_native_messages(
    web: WebClient, settings: Settings
) -> None:
    # A request the size of a browser's largest upload part (AppendUpload: a
    # chunk plus its header) reaches the service, which judges it...
    largest = job_service_pb2.GetJobRequest(name="jobs/" + "x" * (settings.max_chunk_bytes + 1024))
    reply = await web.call(f"{JOBS}/GetJob", largest)
    assert reply.code == grpc.StatusCode.INVALID_ARGUMENT, reply.message
    # ...one well past it is refused before it is read whole, as natively.
    huge = job_service_pb2.GetJobRequest(name="x" * (settings.max_chunk_bytes + 128 * 1024))
    over = await web.call(f"{JOBS}/GetJob", huge)
    assert over.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert over.details()["ErrorInfo"].reason == "MESSAGE_TOO_LARGE"


async def test_cors_preflight_for_configured_origins_only(
    web: WebClient, session: aiohttp.ClientSession
) -> None:
    url = f"{web.base_url}/{JOBS}/GetJob"
    asked = {
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization,content-type,x-grpc-web,x-user-agent",
    }
    async with session.options(url, headers={"origin": WEB_TEST_ORIGIN, **asked}) as allowed:
        assert allowed.status == 204
        assert allowed.headers["access-control-allow-origin"] == WEB_TEST_ORIGIN
        assert "POST" in allowed.headers["access-control-allow-methods"]
        allow_headers = allowed.headers["access-control-allow-headers"].split(", ")
        for name in ("authorization", "content-type", "x-grpc-web", "x-user-agent", "grpc-timeout"):
            assert name in allow_headers
    async with session.options(url, headers={"origin": "http://evil.test", **asked}) as refused:
        assert refused.status == 403
        assert "access-control-allow-origin" not in refused.headers
    # The call itself, from the allowed origin, lets the page read the status headers.
    anonymous = WebClient(session, web.base_url, None)
    async with session.post(
        url, data=b"\x00\x00\x00\x00\x00", headers=anonymous.headers(origin=WEB_TEST_ORIGIN)
    ) as call:
        assert call.headers["access-control-allow-origin"] == WEB_TEST_ORIGIN
        exposed = call.headers["access-control-expose-headers"].split(", ")
        assert {"grpc-status", "grpc-message", "grpc-status-details-bin"} <= set(exposed)
    async with session.post(
        url, data=b"\x00\x00\x00\x00\x00", headers=anonymous.headers(origin="http://evil.test")
    ) as call:
        assert "access-control-allow-origin" not in call.headers


@pytest.fixture
async def console_site(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    """A listener of its own (no services) serving a console directory: (base URL, dir)."""
    dist = tmp_path / "dist"
    calls = GrpcWebApp(lambda handler, _method: handler, max_request_bytes=1024)
    listener = WebListener(
        WebApp(calls, CorsPolicy(()), StaticFiles(dist)), f"127.0.0.1:{ports.free_port()}"
    )
    await listener.start()
    try:
        yield listener.url.rstrip("/"), dist
    finally:
        await listener.stop(0.5)


async def test_console_files_are_served(
    console_site: tuple[str, Path], session: aiohttp.ClientSession
) -> None:
    base, dist = console_site
    async with session.get(f"{base}/") as missing:
        assert missing.status == 404
        assert "not built" in await missing.text() and str(dist) in await missing.text()
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><title>Reelscribe</title>")
    (dist / "assets" / "app.js").write_text("console.log('reelscribe')")
    (dist.parent / "secret.txt").write_text("outside the console")
    async with session.get(f"{base}/") as index:
        assert index.status == 200 and index.headers["content-type"].startswith("text/html")
        assert "<title>Reelscribe</title>" in await index.text()
    async with session.get(f"{base}/assets/app.js") as script:
        assert script.headers["content-type"].startswith("text/javascript")
        assert await script.text() == "console.log('reelscribe')"
    async with session.get(f"{base}/jobs/abc") as route:  # a console route: the page
        assert "<title>Reelscribe</title>" in await route.text()
    async with session.get(f"{base}/assets/gone.js") as gone:
        assert gone.status == 404
    for escape in ("/../secret.txt", "/%2e%2e/secret.txt", "/assets/..%2f..%2fsecret.txt"):
        async with session.get(URL(f"{base}{escape}", encoded=True)) as outside:
            assert outside.status == 404, escape


async def test_limits_and_drain_apply_over_grpc_web(
    extra_server: Callable[..., Awaitable[ServerApp]], session: aiohttp.ClientSession, user: str
) -> None:
    app = await extra_server(max_streams_per_user=1, rate_limits={"ListJobs": (0.01, 1)})
    client = WebClient(session, f"http://{app.web_address}", token_for(user))
    # The rate limit: one ListJobs, then RESOURCE_EXHAUSTED saying when to retry.
    assert (await client.call(f"{JOBS}/ListJobs", job_service_pb2.ListJobsRequest())).code == (
        grpc.StatusCode.OK
    )
    limited = await client.call(f"{JOBS}/ListJobs", job_service_pb2.ListJobsRequest())
    assert limited.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert limited.details()["RetryInfo"].retry_delay.seconds > 0
    async with client.open(f"{JOBS}/WatchJobs", job_service_pb2.WatchJobsRequest()) as response:
        received = frames(response)
        await anext(received)  # the stream flows
        # The user's one stream is taken, on both listeners (one count per server).
        second = await client.call(f"{JOBS}/WatchJobs", job_service_pb2.WatchJobsRequest())
        assert second.details()["ErrorInfo"].reason == "TOO_MANY_STREAMS_FOR_USER"
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
            api = Api(channel, client.token)
            native = api.jobs.WatchJobs(job_service_pb2.WatchJobsRequest(), metadata=api.metadata)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await native.read()
            assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        # Shutdown: the open stream ends at once, saying how to resume.
        started = time.monotonic()
        stopping = asyncio.create_task(app.stop(grace_s=10.0))
        rest = [item async for item in received]
    await stopping
    assert time.monotonic() - started < 5.0  # drained, not cut off at the grace
    flags, block = rest[-1]
    assert flags == 0x80
    assert b"grpc-status: 14" in block  # UNAVAILABLE
    assert b"after_cursor" in block  # ...with the resume hint
    assert b"grpc-status-details-bin" in block


async def test_a_busy_web_address_is_refused(settings: Settings, server: ServerApp) -> None:
    second = ServerApp(
        settings.model_copy(
            update={"listen_address": "127.0.0.1:0", "web_listen": server.web_address}
        )
    )
    with pytest.raises(ListenError, match="REELSCRIBE_WEB_LISTEN"):
        await second.start()


async def test_servicer_context_behaves_as_grpc_aio() -> None:
    written: list[object] = []

    async def write(message: object) -> None:
        written.append(message)

    ctx = WebServicerContext(
        [("authorization", "Bearer x"), ("trace-bin", b"\x01")],
        peer="ipv4:127.0.0.1:5000",
        deadline=time.monotonic() + 30,
        write=write,
    )
    assert ctx.invocation_metadata() == (("authorization", "Bearer x"), ("trace-bin", b"\x01"))
    assert 29 < (ctx.time_remaining() or 0) <= 30 and ctx.peer() == "ipv4:127.0.0.1:5000"
    await ctx.write("message")
    assert written == ["message"]
    ended: list[bool] = []
    ctx.add_done_callback(lambda c: ended.append(c.cancelled()))
    ctx.set_trailing_metadata((("x-request-id", "r1"),))
    with pytest.raises(grpc.aio.AbortError):
        await ctx.abort(grpc.StatusCode.NOT_FOUND, "gone", (("grpc-status-details-bin", b"d"),))
    assert ctx.code() == grpc.StatusCode.NOT_FOUND and ctx.details() == "gone"
    assert ctx.trailing_metadata() == (("grpc-status-details-bin", b"d"),)
    assert not ctx.done()
    ctx.finish(cancelled=True)
    ctx.finish(cancelled=False)  # (once only)
    assert ended == [True] and ctx.done() and ctx.cancelled()
