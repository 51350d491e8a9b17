"""A gRPC-Web client for tests, written from the protocol, not from the server's code.

Requests are one frame (flags byte, 4-byte big-endian length, message); the
response is message frames, then a trailers frame (flags 0x80) of
`name: value\\r\\n` lines, or, for a call that failed before any message, the
status in the response headers ("trailers-only"). aiohttp carries it.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import aiohttp
import grpc
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2

CONTENT_TYPE = "application/grpc-web+proto"
_PREFIX = struct.Struct(">BI")
_CODES = {code.value[0]: code for code in grpc.StatusCode}


def frame(payload: bytes, flags: int = 0) -> bytes:
    """One length-prefixed frame."""
    return _PREFIX.pack(flags, len(payload)) + payload


def _b64(value: str) -> bytes:
    return base64.b64decode(value + "=" * (-len(value) % 4))


@dataclass
class WebReply:
    """What one gRPC-Web call answered."""

    http_status: int
    headers: Mapping[str, str]
    messages: list[bytes] = field(default_factory=list)
    trailers: dict[str, str] = field(default_factory=dict)
    #: Whether the status came in the headers (no body).
    trailers_only: bool = False

    @property
    def code(self) -> grpc.StatusCode:
        return _CODES[int(self.trailers["grpc-status"])]

    @property
    def message(self) -> str:
        return unquote(self.trailers.get("grpc-message", ""))

    def details(self) -> dict[str, Any]:
        """The google.rpc details from `grpc-status-details-bin`, by type name."""
        raw = self.trailers.get("grpc-status-details-bin")
        if raw is None:
            return {}
        status = status_pb2.Status.FromString(_b64(raw))
        assert status.code == self.code.value[0] and status.message == self.message
        found: dict[str, Any] = {}
        for detail in status.details:
            for cls in (
                error_details_pb2.ErrorInfo,
                error_details_pb2.BadRequest,
                error_details_pb2.QuotaFailure,
                error_details_pb2.RetryInfo,
            ):
                if detail.Is(cls.DESCRIPTOR):
                    msg = cls()
                    detail.Unpack(msg)
                    found[cls.DESCRIPTOR.name] = msg
        return found

    def parsed(self, cls: type[Message]) -> list[Any]:
        """The messages, parsed as `cls`."""
        return [cls.FromString(m) for m in self.messages]


def _trailer_block(block: bytes) -> dict[str, str]:
    trailers = {}
    for line in block.decode("ascii").split("\r\n"):
        if line:
            key, _, value = line.partition(":")
            trailers[key.strip().lower()] = value.strip()
    return trailers


class WebClient:
    """Calls to one gRPC-Web listener, as one user (or none)."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, token: str | None) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.token = token

    def headers(self, **extra: str) -> dict[str, str]:
        headers = {"content-type": CONTENT_TYPE, "x-grpc-web": "1", "accept": CONTENT_TYPE}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        headers.update(extra)
        return headers

    @asynccontextmanager
    async def open(
        self, method: str, request: Message, **headers: str
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """POST one call; the response is read by the caller (see `frames`)."""
        async with self.session.post(
            f"{self.base_url}/{method}",
            data=frame(request.SerializeToString()),
            headers=self.headers(**headers),
        ) as response:
            yield response

    async def call(self, method: str, request: Message, **headers: str) -> WebReply:
        """One call, read to its end (unary, or a stream the server ends)."""
        async with self.open(method, request, **headers) as response:
            reply = WebReply(response.status, {k.lower(): v for k, v in response.headers.items()})
            async for flags, payload in frames(response):
                if flags & 0x80:
                    reply.trailers = _trailer_block(payload)
                else:
                    reply.messages.append(payload)
            if not reply.trailers and "grpc-status" in response.headers:
                reply.trailers_only = True
                reply.trailers = {k.lower(): v for k, v in response.headers.items()}
            return reply


async def frames(response: aiohttp.ClientResponse) -> AsyncIterator[tuple[int, bytes]]:
    """(flags, payload) of each frame, as they arrive; ends at the end of the body."""
    while True:
        try:
            prefix = await response.content.readexactly(_PREFIX.size)
        except EOFError:  # (asyncio.IncompleteReadError) the body ended
            return
        flags, length = _PREFIX.unpack(prefix)
        yield flags, await response.content.readexactly(length)
