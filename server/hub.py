"""Fan-out of job events from Redis to the watchers in this server process.

One pattern subscription per process (not one per watcher) keeps Redis load
flat however many streams are open. Each watcher gets a bounded queue; a
watcher that falls behind is flagged as overflowed and catches up from the
Postgres log instead of making server memory grow.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import redis.asyncio as aioredis
import structlog

from reelscribe import errors, events

log = structlog.get_logger(__name__)
T = TypeVar("T")

_JOB_PATTERN = events.job_channel(uuid.UUID(int=0)).rsplit(":", 1)[0] + ":*"
_OWNER_PATTERN = events.owner_channel("x")[:-1] + "*"


class ShuttingDown(errors.Unavailable):
    """The server is shutting down: the client should resume elsewhere.

    The interceptor replaces the message with how to resume the method at hand.
    """

    reason = "SERVER_SHUTTING_DOWN"

    def __init__(self, message: str = "the server is shutting down; retry shortly") -> None:
        super().__init__(message)


class LiveMessage:
    """One published message, shared by every watcher of its channel.

    Watchers decode it through `decoded`, which caches per decoder, so a
    message fanned out to a thousand watchers is parsed once, not a thousand
    times.
    """

    __slots__ = ("_decoded", "payload")

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self._decoded: dict[object, object] = {}

    def decoded(self, decoder: Callable[[bytes], T]) -> T:
        """`decoder(payload)`, computed once per decoder."""
        try:
            return self._decoded[decoder]  # type: ignore[return-value]
        except KeyError:
            value = self._decoded[decoder] = decoder(self.payload)
            return value


@dataclass(eq=False)  # identity-hashed: each watcher is distinct
class Subscription:
    """One watcher's view of a channel's live events."""

    channel: str
    queue: asyncio.Queue[LiveMessage]
    #: Set when events were dropped because the queue was full.
    overflowed: bool = False
    #: Set whenever the Redis connection was re-established (events may be lost).
    reconnected: asyncio.Event = field(default_factory=asyncio.Event)
    #: Set when the server shuts down: the watcher must end its stream.
    closed: bool = False


class EventHub:
    """Routes Redis-published job events to in-process subscriptions."""

    def __init__(self, redis: aioredis.Redis, *, buffer_events: int) -> None:
        self._redis = redis
        self._buffer_events = buffer_events
        self._subs: dict[str, set[Subscription]] = {}
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.connected = asyncio.Event()

    async def start(self) -> None:
        """Start the reader task."""
        self._task = asyncio.create_task(self._run(), name="event-hub")

    async def stop(self) -> None:
        """Stop the reader task."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def close_subscriptions(self) -> None:
        """Tell every watcher (and any that subscribes later) to end its stream.

        Each gets an empty wake-up message; a watcher whose queue is full is
        not waiting and sees the flag at its next message.
        """
        self._closed = True
        for subs in self._subs.values():
            for sub in subs:
                sub.closed = True
                with contextlib.suppress(asyncio.QueueFull):
                    sub.queue.put_nowait(LiveMessage(b""))

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[Subscription]:
        """Receive live messages of `channel` (a job or owner channel) within the block."""
        sub = Subscription(channel=channel, queue=asyncio.Queue(maxsize=self._buffer_events))
        sub.closed = self._closed
        self._subs.setdefault(channel, set()).add(sub)
        try:
            yield sub
        finally:
            subs = self._subs.get(channel)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subs[channel]

    @property
    def subscription_count(self) -> int:
        """Number of live subscriptions (for metrics and tests)."""
        return sum(len(s) for s in self._subs.values())

    def _dispatch(self, channel: str, payload: bytes) -> None:
        subs = self._subs.get(channel)
        if not subs:
            return
        message = LiveMessage(payload)
        for sub in subs:
            try:
                sub.queue.put_nowait(message)
            except asyncio.QueueFull:
                sub.overflowed = True

    async def _run(self) -> None:
        backoff_s = 0.1
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.psubscribe(_JOB_PATTERN, _OWNER_PATTERN)
                self.connected.set()
                # Anything published while we were disconnected is lost: tell
                # every watcher to re-read the log.
                for subs in self._subs.values():
                    for sub in subs:
                        sub.reconnected.set()
                backoff_s = 0.1
                me = asyncio.current_task()
                while True:
                    message = await pubsub.get_message(timeout=5.0)
                    # redis-py can swallow a cancel that lands in its read
                    # timeout and return None; a stop would then wait forever.
                    if me is not None and me.cancelling():
                        raise asyncio.CancelledError
                    if message is None or message.get("type") != "pmessage":
                        continue
                    channel = message["channel"]
                    if isinstance(channel, bytes):
                        channel = channel.decode()
                    self._dispatch(channel, message["data"])
            except asyncio.CancelledError:
                await pubsub.aclose()
                raise
            except Exception as exc:
                self.connected.clear()
                log.warning("event hub lost redis; reconnecting", error=repr(exc))
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, 5.0)
