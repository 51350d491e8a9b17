"""Requests that are not protobuf messages of their method: raw bytes on the wire.

They are INVALID_ARGUMENT (MALFORMED_REQUEST) once the caller is authenticated
and UNAUTHENTICATED before, for every kind of call, and the parser's own
message never reaches the client.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from reelscribe.v1 import job_service_pb2
from server.app import ServerApp
from tests.support.api import error_details
from tests.support.tokens import token_for

JOBS = "/reelscribe.v1.JobService"

#: Bytes no request message parses from, by what is wrong with them.
MALFORMED = {
    # Field 1 (`name`), length 2, not UTF-8.
    "invalid UTF-8": b"\x0a\x02\xff\xfe",
    # Field 1 claims 16 bytes; 3 follow.
    "truncated": b"\x0a\x10abc",
    # 200 nested groups of an unknown field: deeper than the parser's recursion limit.
    "deep nesting": b"\x13" * 200 + b"\x14" * 200,
    # A varint that never ends.
    "endless varint": b"\x08" + b"\xff" * 11,
}

#: What a parser's message would contain; none of it may reach a client.
PARSER_WORDS = ("pars", "wire", "utf", "decode", "corrupt", "exception", "traceback", "<class")


def _metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),) if token else ()


def _raw_unary(channel: grpc.aio.Channel, method: str) -> grpc.aio.UnaryUnaryMultiCallable:
    # No serializers: the bytes go on the wire as they are.
    return channel.unary_unary(f"{JOBS}/{method}")


def _assert_malformed(err: grpc.aio.AioRpcError) -> None:
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (err.code(), err.details())
    assert error_details(err)["ErrorInfo"].reason == "MALFORMED_REQUEST"
    details = (err.details() or "").lower()
    assert not any(word in details for word in PARSER_WORDS), details


@pytest.mark.parametrize("case", sorted(MALFORMED))
async def test_malformed_unary_requests_are_invalid_arguments(
    channel: grpc.aio.Channel, user: str, case: str
) -> None:
    call = _raw_unary(channel, "GetJob")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call(MALFORMED[case], metadata=_metadata(token_for(user)), timeout=10)
    _assert_malformed(err.value)
    # The same call with well-formed bytes reaches the handler.
    request = job_service_pb2.GetJobRequest(name=f"jobs/{uuid.uuid4()}")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call(request.SerializeToString(), metadata=_metadata(token_for(user)), timeout=10)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("token", [None, "not.a.jwt"])
async def test_authentication_comes_before_parsing(
    server: ServerApp, channel: grpc.aio.Channel, token: str | None
) -> None:
    before = server.interceptor.authenticated_calls
    for raw in MALFORMED.values():
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await _raw_unary(channel, "CreateJob")(raw, metadata=_metadata(token), timeout=10)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert error_details(err.value)["ErrorInfo"].reason in {"MISSING_TOKEN", "INVALID_TOKEN"}
    assert server.interceptor.authenticated_calls == before


async def test_a_malformed_watch_request_is_an_invalid_argument(
    channel: grpc.aio.Channel, user: str
) -> None:
    call = channel.unary_stream(f"{JOBS}/WatchJob")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        async for _ in call(MALFORMED["invalid UTF-8"], metadata=_metadata(token_for(user))):
            pass
    _assert_malformed(err.value)


async def test_a_malformed_message_in_an_upload_ends_it(
    server: ServerApp, channel: grpc.aio.Channel, user: str
) -> None:
    header = job_service_pb2.UploadMediaRequest(
        header=job_service_pb2.UploadHeader(
            filename="a.bin", size_bytes=10, sha256=hashlib.sha256(b"1234567890").hexdigest()
        )
    )

    async def messages() -> AsyncIterator[bytes]:
        yield header.SerializeToString()
        yield job_service_pb2.UploadMediaRequest(chunk=b"12345").SerializeToString()
        yield b"\x12\x10abc"  # `chunk` (field 2) claims 16 bytes; 3 follow

    call = channel.stream_unary(f"{JOBS}/UploadMedia")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call(messages(), metadata=_metadata(token_for(user)), timeout=10)
    _assert_malformed(err.value)
    # The server is fine, and no stream is left counted as open.
    reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
