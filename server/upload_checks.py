"""What an upload request must satisfy, and the errors that say how it did not."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

from reelscribe import validation
from reelscribe.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
)
from reelscribe.v1 import job_service_pb2

#: What a client-chosen upload id may look like.
UPLOAD_ID = re.compile(r"^[A-Za-z0-9._-]{8,128}$")
_MAX_FILENAME = 255


def validate(header: job_service_pb2.UploadHeader, max_upload_bytes: int) -> None:
    """Refuse a header that is malformed or declares a file over `max_upload_bytes`."""
    violations = validation.sha256(header.sha256, "header.sha256")
    if not header.sha256:
        violations.append(
            FieldViolation("header.sha256", "required: the lowercase hex SHA-256 of the whole file")
        )
    if not header.filename or len(header.filename) > _MAX_FILENAME:
        violations.append(FieldViolation("header.filename", "1-255 characters"))
    if header.size_bytes <= 0:
        violations.append(FieldViolation("header.size_bytes", "the file is empty (0 bytes)"))
    if header.upload_id and not UPLOAD_ID.match(header.upload_id):
        violations.append(
            FieldViolation(
                "header.upload_id", "8-128 characters from [A-Za-z0-9._-] (a UUID is ideal)"
            )
        )
    if header.offset_bytes < 0:
        violations.append(FieldViolation("header.offset_bytes", "must not be negative"))
    validation.check(violations)
    if header.size_bytes > max_upload_bytes:
        raise ResourceExhausted(
            f"file of {header.size_bytes} bytes exceeds the upload limit of "
            f"{max_upload_bytes} bytes",
            reason="UPLOAD_TOO_LARGE",
        )


async def stream_chunks(
    stream: AsyncIterator[job_service_pb2.UploadMediaRequest], max_chunk: int
) -> AsyncIterator[bytes]:
    """The content of an `UploadMedia` stream after its header, checked message by message."""
    async for message in stream:
        if message.WhichOneof("data") != "chunk":
            raise InvalidArgument.field("chunk", "only the first message may be a header")
        if len(message.chunk) > max_chunk:
            raise InvalidArgument.field("chunk", f"chunks are at most {max_chunk} bytes")
        yield message.chunk


def offset_mismatch(upload_id: str, stored: int) -> FailedPrecondition:
    """A part or stream that does not start where the stored bytes end."""
    return FailedPrecondition(
        f"upload {upload_id} has {stored} bytes stored; resume with offset_bytes={stored}",
        reason="UPLOAD_OFFSET_MISMATCH",
        metadata={"stored_bytes": str(stored)},
    )


def expired(upload_id: str, idle_s: float) -> NotFound:
    """An upload that was removed for inactivity."""
    return NotFound(
        f"upload {upload_id} expired: it was not completed within {idle_s:g} s of its last "
        "activity, and its bytes were removed; upload the file again",
        reason="UPLOAD_EXPIRED",
    )
