"""Following an ordered log live: replay from Postgres, then tail Redis.

The Postgres log is the source of truth. Live messages from the event hub are
used only while they arrive exactly in order (position = last + 1); anything
else — a gap, a duplicate, an overflowed buffer, a Redis reconnect, or a
quiet spell (each heartbeat) — sends the follower back to the log. So a
stream is gap-free and duplicate-free whatever happens to Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Generic, TypeVar

from server.hub import LiveMessage, ShuttingDown, Subscription

T = TypeVar("T")


class Entry(Generic[T]):
    """One log entry: its position, the message to send, and whether it ends the log."""

    __slots__ = ("message", "position", "terminal")

    def __init__(self, position: int, message: T, terminal: bool = False) -> None:
        self.position = position
        self.message = message
        self.terminal = terminal


async def follow(
    sub: Subscription,
    *,
    after: int,
    read_after: Callable[[int], Awaitable[list[Entry[T]]]],
    parse_live: Callable[[bytes], Entry[T]],
    heartbeat: Callable[[int], T],
    heartbeat_s: float,
) -> AsyncIterator[T]:
    """Every entry after position `after`, in order, once; stops after a terminal entry.

    Raises `ShuttingDown` when the hub closes the subscription (server shutdown).
    """
    last = after
    while True:
        if sub.closed:
            raise ShuttingDown()
        replay = await read_after(last)
        for entry in replay:
            yield entry.message
            last = entry.position
            if entry.terminal:
                return
        if replay:
            continue  # there may be more than one batch
        sub.overflowed = False
        sub.reconnected.clear()
        while True:
            try:
                # asyncio.timeout, not wait_for: no extra task per message.
                async with asyncio.timeout(heartbeat_s):
                    live = await sub.queue.get()
            except TimeoutError:
                yield heartbeat(last)
                break  # re-check the log: a publish may have been lost
            if sub.closed:
                raise ShuttingDown()
            if sub.overflowed or sub.reconnected.is_set():
                _drain(sub.queue)
                break
            # `parse_live` must be one function object shared by all watchers
            # of a channel for the decode cache to work (see LiveMessage).
            entry = live.decoded(parse_live)
            if entry.position <= last:
                continue
            if entry.position != last + 1:
                break  # a gap: fill it from the log
            yield entry.message
            last = entry.position
            if entry.terminal:
                return


def _drain(q: asyncio.Queue[LiveMessage]) -> None:
    with contextlib.suppress(asyncio.QueueEmpty):
        while True:
            q.get_nowait()
