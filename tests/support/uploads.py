"""Uploads left unfinished, as a client that went away leaves them."""

from __future__ import annotations

import hashlib

import grpc
import pytest

from reelscribe.v1 import job_service_pb2
from tests.support.api import Api, error_details


async def abandon_upload(api: Api, data: bytes, sent_bytes: int, upload_id: str) -> None:
    """Start a resumable upload of `data` and end the stream after `sent_bytes`.

    The server keeps what arrived (the client could resume it) and answers the
    short stream with SIZE_MISMATCH.
    """
    header = job_service_pb2.UploadHeader(
        filename="partial.bin",
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        upload_id=upload_id,
    )

    async def messages():  # type: ignore[no-untyped-def]
        yield job_service_pb2.UploadMediaRequest(header=header)
        yield job_service_pb2.UploadMediaRequest(chunk=data[:sent_bytes])

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await api.jobs.UploadMedia(messages(), metadata=api.metadata, timeout=30)
    assert error_details(err.value)["ErrorInfo"].reason == "SIZE_MISMATCH"  # type: ignore[attr-defined]
