"""Graceful shutdown: refuse new calls, end streams with a hint how to resume.

Once `begin` is called, new calls fail with `ShuttingDown`, streamed
responses end before their next message, and uploads end at their next read
(the upload handler's own cleanup records the stored bytes for the resume).
Every such error says how to pick up where the client was, on any server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from server.hub import ShuttingDown
from server.interceptors.base import Call, Hook

#: How a client picks up where it was when the server shuts down under it.
RESUME_HINTS = {
    "WatchJob": "reconnect with after_seq set to the last seq you received",
    "WatchJobs": "reconnect with after_cursor set to the last cursor you received",
    "UploadMedia": (
        "resume the upload: GetUpload(upload_id) gives stored_bytes, then send the rest "
        "with offset_bytes=stored_bytes (an upload without an upload_id starts over)"
    ),
    "AppendUpload": (
        "send the part again: GetUpload(upload_id) gives stored_bytes, the offset it starts at"
    ),
    "ReadClip": "read on with offset_bytes set to the bytes you received",
}


def shutting_down(method_name: str) -> ShuttingDown:
    """The error that ends a call of `method_name` when the server stops."""
    hint = RESUME_HINTS.get(method_name, "retry the call")
    return ShuttingDown(f"the server is shutting down; {hint} (any server will do)")


class Drain(Hook):
    """Refuses calls and ends streams once the server is shutting down."""

    def __init__(self) -> None:
        #: True once the server is shutting down: new calls and streams are refused.
        self.draining = False
        self._drained: asyncio.Future[None] | None = None

    def begin(self) -> None:
        """Refuse new calls and end open streams (they raise `ShuttingDown`)."""
        self.draining = True
        drained = self._drained_future()
        if not drained.done():
            drained.set_result(None)

    def _drained_future(self) -> asyncio.Future[None]:
        # Made on first use: the interceptor is built before the server's loop runs.
        if self._drained is None:
            self._drained = asyncio.get_running_loop().create_future()
        return self._drained

    @asynccontextmanager
    async def around_call(self, call: Call) -> AsyncIterator[None]:
        try:
            yield
        except ShuttingDown as exc:
            # Whoever noticed the shutdown (the event hub waking watchers, say),
            # the client is told how to resume this method.
            raise shutting_down(call.name) from exc

    async def enter(self, call: Call) -> None:
        if self.draining:
            raise shutting_down(call.name)

    def item(self, call: Call) -> None:
        # Watches waiting for events are woken by the hub; this catches
        # streams that were busy (replaying) instead.
        if self.draining:
            raise shutting_down(call.name)

    def requests(self, call: Call, requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
        return self._drainable(requests, call.name)

    async def _drainable(self, requests: AsyncIterator[Any], name: str) -> AsyncIterator[Any]:
        """`requests`, raising `ShuttingDown` instead of waiting once the server stops.

        The handler stops at its next read, and its own cleanup runs. Once the
        client has sent everything, the call completes like a unary one.
        """
        drained = self._drained_future()
        iterator = aiter(requests)
        while True:
            if drained.done():
                raise shutting_down(name)
            received: asyncio.Future[Any] = asyncio.ensure_future(anext(iterator))
            try:
                await asyncio.wait((received, drained), return_when=asyncio.FIRST_COMPLETED)
            except BaseException:
                received.cancel()  # we were cancelled (the client left): stop reading too
                raise
            if not received.done():
                received.cancel()
                raise shutting_down(name)
            try:
                item = received.result()
            except StopAsyncIteration:
                return
            yield item
