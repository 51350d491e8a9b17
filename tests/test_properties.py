"""Property-based tests against the running server (hypothesis).

* Tenancy: another user's names, in every RPC that takes one, are NOT_FOUND.
* Fuzzing: random request messages never produce INTERNAL or UNKNOWN, and
  the server stays up. Fields a server parses further get values aimed at
  their parsers: page tokens (keyset tokens with extreme times and offsets,
  positions beyond their columns), cursors (other scripts' digits, integers
  beyond int64), Timestamps over the whole int64/int32 range, labels with NUL
  and oversized keys; and raw bytes that are no message at all.
  `REELSCRIBE_FUZZ_EXAMPLES` raises the number of cases per RPC for a longer
  run (the default keeps CI fast).

The server runs on the test event loop, so hypothesis drives a synchronous
gRPC client from a worker thread while the loop keeps serving.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf import descriptor as pb_descriptor
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reelscribe.v1 import (
    job_service_pb2,
    job_service_pb2_grpc,
    search_service_pb2,
    search_service_pb2_grpc,
    transcript_service_pb2,
    transcript_service_pb2_grpc,
)
from server.app import ServerApp
from tests.support import fuzzing
from tests.support.api import Api
from tests.support.media import MEDIA_DIR
from tests.support.tokens import token_for

FUZZ_EXAMPLES = int(os.environ.get("REELSCRIBE_FUZZ_EXAMPLES", "25"))
#: Every RPC of the three services.
_METHODS = [
    method
    for module in (job_service_pb2, transcript_service_pb2, search_service_pb2)
    for service in module.DESCRIPTOR.services_by_name.values()
    for method in service.methods
]
StartServer = Callable[..., Awaitable[ServerApp]]


def _md(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


async def test_other_users_names_are_always_not_found(server: ServerApp, api: Api) -> None:
    job = await api.run(MEDIA_DIR / "ocean.ogg")
    upload_id = str(uuid.uuid4())
    await api.upload_bytes(b"x" * 64, "a.bin", upload_id=upload_id)
    job_id = job.name.split("/")[1]
    names = [job.name, f"{job.name}/transcript", f"jobs/{job_id.upper()}"]
    other = token_for(f"intruder-{uuid.uuid4()}")

    def check() -> None:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            jobs = job_service_pb2_grpc.JobServiceStub(channel)
            tr = transcript_service_pb2_grpc.TranscriptServiceStub(channel)
            calls = {
                "GetJob": lambda n: jobs.GetJob(
                    job_service_pb2.GetJobRequest(name=n), metadata=_md(other), timeout=10
                ),
                "CancelJob": lambda n: jobs.CancelJob(
                    job_service_pb2.CancelJobRequest(name=n), metadata=_md(other), timeout=10
                ),
                "DeleteJob": lambda n: jobs.DeleteJob(
                    job_service_pb2.DeleteJobRequest(name=n), metadata=_md(other), timeout=10
                ),
                "WatchJob": lambda n: list(
                    jobs.WatchJob(
                        job_service_pb2.WatchJobRequest(name=n), metadata=_md(other), timeout=10
                    )
                ),
                "ListWebhookDeliveries": lambda n: jobs.ListWebhookDeliveries(
                    job_service_pb2.ListWebhookDeliveriesRequest(name=n),
                    metadata=_md(other),
                    timeout=10,
                ),
                "GetTranscript": lambda n: tr.GetTranscript(
                    transcript_service_pb2.GetTranscriptRequest(name=n),
                    metadata=_md(other),
                    timeout=10,
                ),
                "GetPartialTranscript": lambda n: tr.GetPartialTranscript(
                    transcript_service_pb2.GetPartialTranscriptRequest(name=n),
                    metadata=_md(other),
                    timeout=10,
                ),
                "ExportTranscript": lambda n: tr.ExportTranscript(
                    transcript_service_pb2.ExportTranscriptRequest(
                        name=n, format=transcript_service_pb2.EXPORT_FORMAT_TXT
                    ),
                    metadata=_md(other),
                    timeout=10,
                ),
                "CreateJob": lambda _: jobs.CreateJob(
                    job_service_pb2.CreateJobRequest(media=job.media),
                    metadata=_md(other),
                    timeout=10,
                ),
                "DeleteMedia": lambda _: jobs.DeleteMedia(
                    job_service_pb2.DeleteMediaRequest(name=job.media),
                    metadata=_md(other),
                    timeout=10,
                ),
                "GetUpload": lambda _: jobs.GetUpload(
                    job_service_pb2.GetUploadRequest(upload_id=upload_id),
                    metadata=_md(other),
                    timeout=10,
                ),
            }

            @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
            @given(rpc=st.sampled_from(sorted(calls)), name=st.sampled_from(names))
            def prop(rpc: str, name: str) -> None:
                try:
                    calls[rpc](name)
                except grpc.RpcError as exc:
                    code = exc.code()  # type: ignore[attr-defined]
                    # Variants of the name may be malformed for some RPCs (a
                    # transcript name where a job name is expected); never data.
                    assert code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT), (
                        rpc,
                        name,
                        code,
                    )
                    if name == names[0]:
                        assert code == grpc.StatusCode.NOT_FOUND, (rpc, name, code)
                    return
                raise AssertionError(f"{rpc}({name}) returned data to another user")

            prop()

    await asyncio.to_thread(check)
    assert (await api.get(job.name)).state == job.state  # the owner's job is untouched


async def test_fuzzed_requests_never_break_the_server(
    extra_server: StartServer, idle_queue: str
) -> None:
    # A server of its own whose queue no worker reads: fuzzed jobs are recorded, never run.
    server = await extra_server(queue_name=idle_queue)
    token = token_for(f"fuzzer-{uuid.uuid4()}")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        api = Api(channel, token)
        media = await api.upload(MEDIA_DIR / "ocean.ogg")
        job = await api.create(media.name)
    # Real names, so that requests get past the lookups to the fields parsed after them.
    names = {"name": job.name, "media": media.name, "jobs": job.name}

    def fuzz() -> None:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            tr = transcript_service_pb2_grpc.TranscriptServiceStub(channel)
            stubs = {
                "reelscribe.v1.JobService": job_service_pb2_grpc.JobServiceStub(channel),
                "reelscribe.v1.TranscriptService": tr,
                "reelscribe.v1.SearchService": search_service_pb2_grpc.SearchServiceStub(channel),
            }
            for method in _METHODS:
                _fuzz_method(stubs[method.containing_service.full_name], method, token, names)

    await asyncio.to_thread(fuzz)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def _send(call: Any, method: pb_descriptor.MethodDescriptor, request: Any, token: str) -> None:
    """One call of `method`; fails if it ends INTERNAL or UNKNOWN."""
    request_cls = method.input_type._concrete_class
    try:
        if method.client_streaming:
            chunks = [request_cls(chunk=b"\0" * 10)]
            call(iter([request, *chunks]), metadata=_md(token), timeout=5)
        elif method.server_streaming:
            for _ in call(request, metadata=_md(token), timeout=2):
                pass
        else:
            call(request, metadata=_md(token), timeout=5)
    except grpc.RpcError as exc:
        code = exc.code()  # type: ignore[attr-defined]
        assert code not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), (
            method.full_name,
            request,
            exc.details(),  # type: ignore[attr-defined]
        )


def _fuzz_method(
    stub: Any, method: pb_descriptor.MethodDescriptor, token: str, names: dict[str, str]
) -> None:
    request_cls = method.input_type._concrete_class
    call = getattr(stub, method.name)
    # Every value aimed at a parser, alone; then random requests.
    for case in fuzzing.edge_cases(method.input_type, names):
        _send(call, method, fuzzing.build(request_cls, case), token)

    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(data=fuzzing.message_dict(method.input_type, tuple(names.values())))
    def prop(data: dict[str, Any]) -> None:
        _send(call, method, fuzzing.build(request_cls, data), token)

    prop()


async def test_raw_bytes_never_break_the_server(server: ServerApp) -> None:
    """Bytes that are mostly no message at all (and some that happen to parse)."""
    token = token_for(f"fuzzer-{uuid.uuid4()}")

    def fuzz() -> None:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            for method in _METHODS:
                _fuzz_raw(channel, method, token)

    await asyncio.to_thread(fuzz)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def _fuzz_raw(channel: grpc.Channel, method: pb_descriptor.MethodDescriptor, token: str) -> None:
    path = f"/{method.containing_service.full_name}/{method.name}"

    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(raw=st.lists(st.binary(max_size=64), min_size=1, max_size=3))
    def prop(raw: list[bytes]) -> None:
        try:
            if method.client_streaming:
                channel.stream_unary(path)(iter(raw), metadata=_md(token), timeout=5)
            elif method.server_streaming:
                for _ in channel.unary_stream(path)(raw[0], metadata=_md(token), timeout=2):
                    pass
            else:
                channel.unary_unary(path)(raw[0], metadata=_md(token), timeout=5)
        except grpc.RpcError as exc:
            code = exc.code()  # type: ignore[attr-defined]
            assert code not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), (
                method.full_name,
                raw,
                exc.details(),  # type: ignore[attr-defined]
            )

    prop()
