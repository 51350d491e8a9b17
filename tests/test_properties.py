"""Property-based tests against the running server (hypothesis).

* Tenancy: another user's names, in every RPC that takes one, are NOT_FOUND.
* Fuzzing: random request messages never produce INTERNAL or UNKNOWN, and
  the server stays up. `REELSCRIBE_FUZZ_EXAMPLES` raises the number of cases
  per RPC for a longer run (the default keeps CI fast).

The server runs on the test event loop, so hypothesis drives a synchronous
gRPC client from a worker thread while the loop keeps serving.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any

import grpc
from google.protobuf import descriptor as pb_descriptor
from google.protobuf import message as pb_message
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
from tests.support.api import Api
from tests.support.media import MEDIA_DIR
from tests.support.tokens import token_for

FUZZ_EXAMPLES = int(os.environ.get("REELSCRIBE_FUZZ_EXAMPLES", "25"))
#: Fields that would make the server resolve random host names (no DNS here).
_URL_FIELDS = frozenset({"source_uri", "callback_uri"})


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


def _value(field: pb_descriptor.FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    t = pb_descriptor.FieldDescriptor
    if field.name in _URL_FIELDS:
        return st.just("")
    if field.type == t.TYPE_MESSAGE:
        if field.message_type.GetOptions().map_entry:
            return st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3)
        return _message_dict(field.message_type, depth + 1)
    if field.type == t.TYPE_ENUM:
        return st.sampled_from([v.number for v in field.enum_type.values] + [99])
    if field.type == t.TYPE_BOOL:
        return st.booleans()
    if field.type in (t.TYPE_DOUBLE, t.TYPE_FLOAT):
        return st.floats(allow_nan=True, allow_infinity=True, width=32)
    if field.type == t.TYPE_BYTES:
        return st.binary(max_size=64)
    if field.type == t.TYPE_STRING:
        return st.one_of(
            st.text(max_size=40),
            st.sampled_from(
                [
                    "jobs/",
                    "jobs/x",
                    f"jobs/{uuid.uuid4()}",
                    f"media/{uuid.uuid4()}",
                    "jobs/../../etc",
                    "'; DROP TABLE jobs; --",
                    "\u202e\U0001f600",
                    "x" * 5000,
                ]
            ),
        )
    return st.integers(min_value=-(2**31), max_value=2**31 - 1)


def _message_dict(desc: pb_descriptor.Descriptor, depth: int = 0) -> st.SearchStrategy[Any]:
    if depth > 2:
        return st.just({})
    fields = {}
    for field in desc.fields:
        if field.name in _URL_FIELDS:
            continue
        value = _value(field, depth)
        if field.is_repeated and not (
            field.type == field.TYPE_MESSAGE and field.message_type.GetOptions().map_entry
        ):
            value = st.lists(value, max_size=3)
        fields[field.name] = value
    return st.fixed_dictionaries({}, optional=fields)


def _build(cls: type[pb_message.Message], data: dict[str, Any]) -> pb_message.Message:
    message = cls()
    for name, value in data.items():
        field = cls.DESCRIPTOR.fields_by_name[name]
        target = getattr(message, name)
        if field.type == field.TYPE_MESSAGE and field.message_type.GetOptions().map_entry:
            target.update(value)
        elif field.is_repeated:
            for item in value:
                if field.type == field.TYPE_MESSAGE:
                    target.add().CopyFrom(_build(target._message_descriptor._concrete_class, item))
                else:
                    target.append(item)
        elif field.type == field.TYPE_MESSAGE:
            target.CopyFrom(_build(type(target), value))
        else:
            setattr(message, name, value)
    return message


async def test_fuzzed_requests_never_break_the_server(server: ServerApp) -> None:
    token = token_for(f"fuzzer-{uuid.uuid4()}")

    def fuzz() -> None:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            tr = transcript_service_pb2_grpc.TranscriptServiceStub(channel)
            stubs = {
                "reelscribe.v1.JobService": job_service_pb2_grpc.JobServiceStub(channel),
                "reelscribe.v1.TranscriptService": tr,
                "reelscribe.v1.SearchService": search_service_pb2_grpc.SearchServiceStub(channel),
            }
            modules = (job_service_pb2, transcript_service_pb2, search_service_pb2)
            for module in modules:
                for service in module.DESCRIPTOR.services_by_name.values():
                    for method in service.methods:
                        _fuzz_method(stubs[service.full_name], method, token)

    await asyncio.to_thread(fuzz)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def _fuzz_method(stub: Any, method: pb_descriptor.MethodDescriptor, token: str) -> None:
    request_cls = method.input_type._concrete_class
    call = getattr(stub, method.name)

    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(data=_message_dict(method.input_type))
    def prop(data: dict[str, Any]) -> None:
        request = _build(request_cls, data)
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
                exc.details(),
            )  # type: ignore[attr-defined]

    prop()
