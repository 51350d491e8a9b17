"""The broker bookkeeping the reconciler relies on, against the real Redis."""

from __future__ import annotations

import uuid

from reelscribe import queue
from reelscribe.config import Settings


def test_enqueued_messages_are_found_by_their_broker_id(settings: Settings) -> None:
    broker = queue.make_broker(settings.redis_url)
    name = f"queue-test-{uuid.uuid4().hex[:8]}"
    jq = queue.JobQueue(broker, name)
    message = jq.message(queue.MERGE_JOB, uuid.uuid4())
    broker_id = jq.enqueue_sync(message)
    # Redis keeps each enqueue under an id of its own, not the message id.
    assert broker_id != message.message_id
    assert jq.pending_message_ids([broker_id, message.message_id]) == {broker_id}
    consumer = broker.consume(queue.queue_for(name, queue.MERGE_JOB), prefetch=1, timeout=1000)
    try:
        taken = next(consumer)
        assert taken is not None
        # In flight (fetched, not acknowledged) it is still held.
        assert jq.pending_message_ids([broker_id]) == {broker_id}
        consumer.ack(taken)
        assert jq.pending_message_ids([broker_id]) == set()
    finally:
        consumer.close()
        broker.close()
