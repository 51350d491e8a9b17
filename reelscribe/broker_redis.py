"""What Reelscribe knows of Dramatiq's Redis broker beyond its public API.

Dramatiq has no public way to count a queue's messages or to ask whether a
message is still held, and its Redis broker neither wraps redis-py's errors
nor exposes the id it stores a message under. The queue's `depth()` and
`pending_message_ids()` (the reconciler's question "was this message lost?")
need all of that, so this module is the one place that reads the broker's
Redis layout (as of dramatiq 2.x):

    {namespace}:{queue}            list of message ids ready to be taken
    {namespace}:{queue}.msgs       hash: message id -> encoded message
    {namespace}:{queue}.DQ         the queue's delay queue (retries in backoff)
    {namespace}:{queue}.DQ.msgs    its messages
    {namespace}:{queue}.XQ         sorted set of dead-lettered message ids
    {namespace}:__heartbeats__     sorted set: broker id -> last heartbeat (ms)
    {namespace}:__acks__.{broker id}.{queue}   ids of messages that broker holds

A message a worker has fetched stays in `.msgs` until it is acked, so "held"
covers queued, delayed and in-flight messages. With another broker these
functions return nothing useful (`{}`, or every id as still held), which
keeps the reconciler from re-sending anything.

Leases: each worker process's broker has an id; every Redis command the
broker runs (a consumer's poll, an ack) stamps that id into `__heartbeats__`,
and a sweep (`maintenance_chance` per command) puts the held messages of ids
silent for `heartbeat_timeout` back on their queues. Dramatiq only stamps the
id when some consumer polls, so `beat` stamps it on purpose (`workers.broker.
BrokerHeartbeat`): a message being worked on stays with its live worker.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import dramatiq
import dramatiq.errors
import redis.exceptions
from dramatiq.common import current_millis

#: What the Redis broker raises when Redis cannot be reached: its own
#: connection error, or redis-py's, which it lets through.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    dramatiq.errors.BrokerConnectionError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ReadOnlyError,
    OSError,
)

#: The option the Redis broker records a message's own id under.
_MESSAGE_ID_OPTION = "redis_message_id"


def message_id(message: dramatiq.Message[Any]) -> str:
    """The id the broker stores an enqueued `message` under.

    That is not `message.message_id`: the Redis broker gives every enqueue an
    id of its own, so a retry is a new entry. Only this id tells later whether
    the broker still holds the message.
    """
    return str(message.options.get(_MESSAGE_ID_OPTION, message.message_id))


def _client(broker: dramatiq.Broker) -> tuple[Any, str] | None:
    """The broker's sync Redis client and key namespace; None for other brokers."""
    client = getattr(broker, "client", None)
    if client is None:
        return None
    return client, getattr(broker, "namespace", "dramatiq")


def depth(broker: dramatiq.Broker, queues: Iterable[str]) -> dict[str, int]:
    """Messages waiting in `queues` (blocking Redis calls): `ready` to be taken,
    `delayed` (retries waiting for their backoff) and `dead` (given up, kept for
    inspection), summed over the queues; `{}` for a broker that is not Redis."""
    found = _client(broker)
    if found is None:
        return {}
    client, namespace = found
    with client.pipeline(transaction=False) as pipe:
        for name in queues:
            key = f"{namespace}:{name}"
            pipe.llen(key)
            pipe.llen(f"{key}.DQ")
            pipe.zcard(f"{key}.XQ")
        counts = pipe.execute()
    return {
        state: sum(int(n) for n in counts[i::3])
        for i, state in enumerate(("ready", "delayed", "dead"))
    }


def held_message_ids(
    broker: dramatiq.Broker, queues: Iterable[str], message_ids: list[str]
) -> set[str]:
    """Which of `message_ids` (from `message_id`) the broker still holds in
    `queues`: queued, delayed or in flight. A broker that is not Redis is
    assumed to hold them all."""
    found = _client(broker)
    if found is None or not message_ids:
        return set(message_ids)
    client, namespace = found
    held: set[str] = set()
    for name in queues:
        for suffix in (".msgs", ".DQ.msgs"):
            present = client.hmget(f"{namespace}:{name}{suffix}", message_ids)
            held |= {mid for mid, raw in zip(message_ids, present, strict=True) if raw}
    return held


def heartbeat_timeout_s(broker: dramatiq.Broker) -> float | None:
    """Seconds of silence after which the Redis broker takes a worker's held
    messages back; None for a broker that is not Redis."""
    if _client(broker) is None or not hasattr(broker, "broker_id"):
        return None
    return float(broker.heartbeat_timeout) / 1000  # type: ignore[attr-defined]


def beat(broker: dramatiq.Broker) -> None:
    """Stamp `broker`'s heartbeat now, as its own commands do (blocking Redis
    call; raises the broker's connection errors). Nothing for another broker."""
    found = _client(broker)
    broker_id = getattr(broker, "broker_id", None)
    if found is None or broker_id is None:
        return
    client, namespace = found
    # The same clock as Dramatiq's dispatch script, which is given the
    # client's milliseconds too (not Redis' TIME).
    client.zadd(f"{namespace}:__heartbeats__", {broker_id: current_millis()})
