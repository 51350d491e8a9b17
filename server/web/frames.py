"""The gRPC-Web wire format: length-prefixed frames, trailers, metadata as headers.

A body is a sequence of frames, each a flags byte, a 4-byte big-endian length
and that many bytes: a message (flags 0x00), or, last, the trailers (flags
0x80) as HTTP/1-style `name: value\\r\\n` lines. `application/grpc-web-text`
is the same, base64-encoded. sonora's `protocol` module has the framing
(`wrap_message`) and `grpc-timeout` parsing; trailers are packed here because
sonora's `pack_trailers` writes names and values given as bytes (as its own
unary path gives them) as `b'grpc-status': b'0'`.
"""

from __future__ import annotations

import base64
import binascii
import struct
from collections.abc import Iterable, Iterator

import grpc
from sonora import protocol

from server.web.context import MetadataItem

#: Flags byte of the trailers frame.
TRAILERS_FLAG = 0x80
#: Flags bit of a compressed message (never used here).
COMPRESSED_FLAG = 0x01
_PREFIX = struct.Struct(">BI")

#: Request headers that are HTTP's own, not the call's metadata.
_NOT_METADATA = frozenset(
    {
        "grpc-timeout",
        "content-length",
        "connection",
        "keep-alive",
        "transfer-encoding",
        "te",
        "host",
        "accept-encoding",
    }
)
#: Characters `grpc-message` carries as they are (gRPC percent-encodes the rest).
_PLAIN = frozenset(range(0x20, 0x7F)) - {ord("%")}


class FramingError(ValueError):
    """A request body that is not a sequence of gRPC-Web frames."""


def message_frame(payload: bytes, *, text: bool = False) -> bytes:
    """One message frame (base64 for `grpc-web-text`)."""
    frame: bytes = protocol.wrap_message(False, False, payload)
    return base64.b64encode(frame) if text else frame


def trailers_frame(trailers: Iterable[tuple[str, str]], *, text: bool = False) -> bytes:
    """The closing frame carrying the trailers."""
    block = "".join(f"{key.lower()}: {value}\r\n" for key, value in trailers).encode("ascii")
    frame = _PREFIX.pack(TRAILERS_FLAG, len(block)) + block
    return base64.b64encode(frame) if text else frame


def request_messages(body: bytes, *, text: bool = False) -> list[bytes]:
    """The message payloads of a request body; raises `FramingError`."""
    if text:
        try:
            body = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise FramingError("the body is not base64") from exc
    messages = []
    offset = 0
    while offset < len(body):
        if len(body) - offset < _PREFIX.size:
            raise FramingError("a frame is cut short")
        flags, length = _PREFIX.unpack_from(body, offset)
        offset += _PREFIX.size
        if len(body) - offset < length:
            raise FramingError("a frame is cut short")
        if flags & COMPRESSED_FLAG:
            raise FramingError("compressed messages are not supported")
        if not flags & TRAILERS_FLAG:  # (clients send no trailers; ignore any)
            messages.append(body[offset : offset + length])
        offset += length
    return messages


def encode_grpc_message(details: str) -> str:
    """`details` percent-encoded as the `grpc-message` trailer requires."""
    return "".join(
        chr(byte) if byte in _PLAIN else f"%{byte:02X}" for byte in details.encode("utf-8")
    )


def metadata_headers(metadata: Iterable[MetadataItem]) -> Iterator[tuple[str, str]]:
    """Metadata as header text: `-bin` values base64-encoded."""
    for key, value in metadata:
        if isinstance(value, bytes):
            yield key, base64.b64encode(value).decode("ascii")
        else:
            yield key, value


def status_headers(
    code: grpc.StatusCode, details: str | None, trailing: Iterable[MetadataItem]
) -> list[tuple[str, str]]:
    """The trailers of a call that ended with `code`."""
    trailers = [("grpc-status", str(code.value[0]))]
    if details:
        trailers.append(("grpc-message", encode_grpc_message(details)))
    trailers.extend(metadata_headers(trailing))
    return trailers


def request_metadata(headers: Iterable[tuple[bytes, bytes]]) -> list[MetadataItem]:
    """The call's metadata from its request headers (`-bin` values decoded)."""
    metadata: list[MetadataItem] = []
    for raw_key, raw_value in headers:
        key = raw_key.decode("latin-1").lower()
        if key in _NOT_METADATA or key.startswith(":"):
            continue
        if key.endswith("-bin"):
            try:
                metadata.append((key, base64.b64decode(raw_value + b"=" * (-len(raw_value) % 4))))
            except (binascii.Error, ValueError):
                continue  # unreadable binary metadata is dropped, as grpc does
        else:
            metadata.append((key, raw_value.decode("latin-1")))
    return metadata


def parse_timeout(value: bytes) -> float | None:
    """Seconds in a `grpc-timeout` header (`100m`, `5S`); None if it does not parse."""
    try:
        seconds = float(protocol.parse_timeout(value.strip()))
    except (KeyError, ValueError):
        return None
    return seconds if seconds >= 0 else None
