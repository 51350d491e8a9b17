"""Every RPC against every kind of bad token, on a server that also takes RS256/ES256
tokens from a JWKS; plus key rotation, kid floods and streams outliving tokens."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import http.server
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from reelscribe.config import Settings
from reelscribe.v1 import (
    job_service_pb2,
    job_service_pb2_grpc,
    search_service_pb2,
    search_service_pb2_grpc,
    transcript_service_pb2,
    transcript_service_pb2_grpc,
)
from server.app import ServerApp
from tests.support.api import error_details
from tests.support.tokens import JWT_SECRET

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
ROTATED_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _jwk(key: Any, kid: str, alg: str) -> dict[str, Any]:
    algo = jwt.algorithms.RSAAlgorithm if alg == "RS256" else jwt.algorithms.ECAlgorithm
    jwk = json.loads(algo.to_jwk(key.public_key()))
    jwk.update({"kid": kid, "alg": alg, "use": "sig"})
    return jwk


class Jwks:
    """A local identity provider's JWKS endpoint that counts its fetches."""

    def __init__(self) -> None:
        self.keys = [_jwk(RSA_KEY, "rsa-1", "RS256"), _jwk(EC_KEY, "ec-1", "ES256")]
        self.fetches = 0
        self.url = ""


@pytest.fixture(scope="module")
def jwks() -> Iterator[Jwks]:
    state = Jwks()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            state.fetches += 1
            body = json.dumps({"keys": state.keys}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    yield state
    server.shutdown()


@pytest.fixture(scope="module")
async def idp_server(settings: Settings, jwks: Jwks, server: ServerApp) -> AsyncIterator[ServerApp]:
    """A second server on the same stack that also accepts RS256/ES256 tokens."""
    app = ServerApp(
        settings.model_copy(
            update={
                "jwt_algorithms": ("HS256", "RS256", "ES256"),
                "jwks_url": jwks.url,
                "jwks_min_refetch_s": 1.0,
                "jwt_leeway_s": 1.0,
                "watch_heartbeat_s": 0.5,
            }
        )
    )
    await app.start()
    yield app
    await app.stop(grace_s=0.5)


def _claims(**overrides: Any) -> dict[str, Any]:
    # Minted at import: the times must outlast the whole suite (over 10 minutes)
    # before these tests run, or a "future" nbf is already past.
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": "matrix-user",
        "iat": now,
        "exp": now + 3 * 3600,
        "iss": "reelscribe",
        "aud": "reelscribe",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _raw_token(
    header: dict[str, Any], claims: dict[str, Any], sign: Callable[[bytes], bytes]
) -> str:
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{_b64(sign(signing_input.encode()))}"


def _rs256(claims: dict[str, Any], kid: str = "rsa-1", key: Any = RSA_KEY, **headers: Any) -> str:
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid, **headers})


def _tampered() -> str:
    head, _payload, sig = _rs256(_claims()).split(".")
    return f"{head}.{_b64(json.dumps(_claims(sub='admin', role='admin')).encode())}.{sig}"


RSA_PUBLIC_PEM = RSA_KEY.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)

BAD_TOKENS: dict[str, str | None] = {
    "no token": None,
    "alg none": _raw_token({"alg": "none", "typ": "JWT"}, _claims(), lambda _: b""),
    "HS256 signed with the RS public key": _raw_token(
        {"alg": "HS256", "typ": "JWT", "kid": "rsa-1"},
        _claims(),
        lambda data: hmac.new(RSA_PUBLIC_PEM, data, hashlib.sha256).digest(),
    ),
    "expired": _rs256(_claims(exp=int(time.time()) - 600)),
    "nbf in the future": _rs256(_claims(nbf=int(time.time()) + 2 * 3600)),
    "missing exp": _rs256(_claims(exp=None)),
    "wrong aud": _rs256(_claims(aud="someone-else")),
    "iss that merely contains ours": _rs256(_claims(iss="https://evil.example/reelscribe")),
    "iss prefix": _rs256(_claims(iss="reelscribe-evil")),
    "unknown crit header": _rs256(_claims(), crit=["x-unknown"], **{"x-unknown": 1}),
    "tampered payload": _tampered(),
    "unknown kid": _rs256(_claims(), kid="not-a-key"),
    "HS256 with a wrong secret": jwt.encode(
        _claims(), "not-our-secret-" + "z" * 30, algorithm="HS256"
    ),
}


def _every_rpc(channel: grpc.aio.Channel, metadata: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """One call of every RPC, streaming ones included, as awaitables."""
    jobs = job_service_pb2_grpc.JobServiceStub(channel)
    tr = transcript_service_pb2_grpc.TranscriptServiceStub(channel)
    search = search_service_pb2_grpc.SearchServiceStub(channel)
    name = f"jobs/{uuid.uuid4()}"

    async def upload() -> None:
        async def messages():  # type: ignore[no-untyped-def]
            yield job_service_pb2.UploadMediaRequest(
                header=job_service_pb2.UploadHeader(
                    filename="a.ogg", size_bytes=3, sha256=hashlib.sha256(b"abc").hexdigest()
                )
            )
            yield job_service_pb2.UploadMediaRequest(chunk=b"abc")

        await jobs.UploadMedia(messages(), metadata=metadata, timeout=10)

    async def drain(call: Any) -> None:
        async for _ in call:
            pass

    m, t = metadata, 10
    return {
        "UploadMedia": upload(),
        "AppendUpload": jobs.AppendUpload(
            job_service_pb2.AppendUploadRequest(
                header=job_service_pb2.UploadHeader(
                    filename="a.ogg",
                    size_bytes=3,
                    sha256=hashlib.sha256(b"abc").hexdigest(),
                    upload_id=str(uuid.uuid4()),
                ),
                data=b"abc",
            ),
            metadata=m,
            timeout=t,
        ),
        "GetUpload": jobs.GetUpload(
            job_service_pb2.GetUploadRequest(upload_id="x" * 10), metadata=m, timeout=t
        ),
        "DeleteMedia": jobs.DeleteMedia(
            job_service_pb2.DeleteMediaRequest(name=f"media/{uuid.uuid4()}"), metadata=m, timeout=t
        ),
        "ReadMedia": drain(
            jobs.ReadMedia(
                job_service_pb2.ReadMediaRequest(name=f"media/{uuid.uuid4()}"),
                metadata=m,
                timeout=t,
            )
        ),
        "CreateJob": jobs.CreateJob(job_service_pb2.CreateJobRequest(), metadata=m, timeout=t),
        "GetJob": jobs.GetJob(job_service_pb2.GetJobRequest(name=name), metadata=m, timeout=t),
        "ListJobs": jobs.ListJobs(job_service_pb2.ListJobsRequest(), metadata=m, timeout=t),
        "CancelJob": jobs.CancelJob(
            job_service_pb2.CancelJobRequest(name=name), metadata=m, timeout=t
        ),
        "DeleteJob": jobs.DeleteJob(
            job_service_pb2.DeleteJobRequest(name=name), metadata=m, timeout=t
        ),
        "WatchJob": drain(
            jobs.WatchJob(job_service_pb2.WatchJobRequest(name=name), metadata=m, timeout=t)
        ),
        "WatchJobs": drain(
            jobs.WatchJobs(job_service_pb2.WatchJobsRequest(), metadata=m, timeout=t)
        ),
        "GetUsage": jobs.GetUsage(job_service_pb2.GetUsageRequest(), metadata=m, timeout=t),
        "ListModels": jobs.ListModels(job_service_pb2.ListModelsRequest(), metadata=m, timeout=t),
        "ListWebhookDeliveries": jobs.ListWebhookDeliveries(
            job_service_pb2.ListWebhookDeliveriesRequest(name=name), metadata=m, timeout=t
        ),
        "GetCostReport": jobs.GetCostReport(
            job_service_pb2.GetCostReportRequest(), metadata=m, timeout=t
        ),
        "GetTranscript": tr.GetTranscript(
            transcript_service_pb2.GetTranscriptRequest(name=name), metadata=m, timeout=t
        ),
        "ExportTranscript": tr.ExportTranscript(
            transcript_service_pb2.ExportTranscriptRequest(name=name), metadata=m, timeout=t
        ),
        "GetPartialTranscript": tr.GetPartialTranscript(
            transcript_service_pb2.GetPartialTranscriptRequest(name=name), metadata=m, timeout=t
        ),
        "GetSummary": tr.GetSummary(
            transcript_service_pb2.GetSummaryRequest(name=name), metadata=m, timeout=t
        ),
        "ListChapters": tr.ListChapters(
            transcript_service_pb2.ListChaptersRequest(name=name), metadata=m, timeout=t
        ),
        "ListHighlights": tr.ListHighlights(
            transcript_service_pb2.ListHighlightsRequest(name=name), metadata=m, timeout=t
        ),
        "RenameSpeaker": tr.RenameSpeaker(
            transcript_service_pb2.RenameSpeakerRequest(name=f"{name}/speakers/1"),
            metadata=m,
            timeout=t,
        ),
        "ReadClip": drain(
            tr.ReadClip(transcript_service_pb2.ReadClipRequest(name=name), metadata=m, timeout=t)
        ),
        "AskQuestion": tr.AskQuestion(
            transcript_service_pb2.AskQuestionRequest(question="q"), metadata=m, timeout=t
        ),
        "Search": search.Search(search_service_pb2.SearchRequest(query="q"), metadata=m, timeout=t),
    }


def test_the_matrix_covers_every_rpc() -> None:
    from reelscribe.v1 import job_service_pb2 as j
    from reelscribe.v1 import search_service_pb2 as s
    from reelscribe.v1 import transcript_service_pb2 as tr

    declared = {
        m.name
        for mod in (j, s, tr)
        for svc in mod.DESCRIPTOR.services_by_name.values()
        for m in svc.methods
    }
    channel = grpc.aio.insecure_channel("127.0.0.1:1")
    calls = _every_rpc(channel, ())
    for call in calls.values():
        call.close() if hasattr(call, "close") else None
    assert set(calls) == declared


@pytest.mark.parametrize("case", sorted(BAD_TOKENS))
async def test_bad_token_is_refused_by_every_rpc_before_any_handler(
    idp_server: ServerApp, case: str
) -> None:
    token = BAD_TOKENS[case]
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    before = idp_server.interceptor.authenticated_calls
    async with grpc.aio.insecure_channel(f"127.0.0.1:{idp_server.port}") as channel:
        for rpc, call in _every_rpc(channel, metadata).items():
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await call
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED, (case, rpc)
            reason = error_details(err.value)["ErrorInfo"].reason
            assert reason in {"MISSING_TOKEN", "INVALID_TOKEN", "TOKEN_EXPIRED"}, (case, rpc)
    # The probe: no call got past authentication, so no handler and no query ran.
    assert idp_server.interceptor.authenticated_calls == before


async def _list_jobs(app: ServerApp, token: str) -> grpc.StatusCode:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
        stub = job_service_pb2_grpc.JobServiceStub(channel)
        try:
            await stub.ListJobs(
                job_service_pb2.ListJobsRequest(),
                metadata=(("authorization", f"Bearer {token}"),),
                timeout=10,
            )
        except grpc.aio.AioRpcError as exc:
            return exc.code()
        return grpc.StatusCode.OK


async def test_jwks_tokens_rotation_and_kid_floods(idp_server: ServerApp, jwks: Jwks) -> None:
    assert await _list_jobs(idp_server, _rs256(_claims())) == grpc.StatusCode.OK
    es256 = jwt.encode(_claims(), EC_KEY, algorithm="ES256", headers={"kid": "ec-1"})
    assert await _list_jobs(idp_server, es256) == grpc.StatusCode.OK
    hs256 = jwt.encode(_claims(), JWT_SECRET, algorithm="HS256")
    assert await _list_jobs(idp_server, hs256) == grpc.StatusCode.OK

    # Made-up key ids cost at most one fetch per refetch interval.
    before = jwks.fetches
    for _ in range(20):
        token = _rs256(_claims(), kid=f"random-{uuid.uuid4()}")
        assert await _list_jobs(idp_server, token) == grpc.StatusCode.UNAUTHENTICATED
    assert jwks.fetches - before <= 1

    # The provider rotates its key: new tokens verify once the interval passes.
    jwks.keys = [_jwk(ROTATED_KEY, "rsa-2", "RS256")]
    rotated = _rs256(_claims(), kid="rsa-2", key=ROTATED_KEY)
    await asyncio.sleep(1.1)
    assert await _list_jobs(idp_server, rotated) == grpc.StatusCode.OK


async def test_a_stream_does_not_outlive_its_token(idp_server: ServerApp) -> None:
    token = jwt.encode(_claims(exp=int(time.time()) + 2), JWT_SECRET, algorithm="HS256")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{idp_server.port}") as channel:
        stub = job_service_pb2_grpc.JobServiceStub(channel)
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as err:
            async for _ in stub.WatchJobs(
                job_service_pb2.WatchJobsRequest(),
                metadata=(("authorization", f"Bearer {token}"),),
                timeout=30,
            ):
                pass
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "expired" in err.value.details()
        assert time.monotonic() - started < 10
