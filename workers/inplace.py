"""A job whose speech fits one chunk runs its chunk and merge inside the prepare message.

Fanning out one chunk buys no parallelism, only two queue round trips (each
up to a consumer's poll interval) and two more message deliveries. Every
guarantee of the fanned-out path holds, because the same stage code runs:

* progress: the same events, in the same order;
* cancel: the stages check for it between units of work as usual;
* crash: the chunk records the prepare message as the one it waits on, and
  the job's pending message stays the prepare message until the merge hands
  over to the insights stage, so the reconciler sees a message in flight; a
  killed worker's prepare message is delivered again and resumes from the
  stored plan (`stages._resume_prepare`), fanning out what is left;
* exactly once: the chunk and the merge are idempotent, and errors they
  re-raise retry the prepare message, which resumes the same way.
"""

from __future__ import annotations

from dramatiq.middleware import CurrentMessage

from reelscribe import broker_redis, queue
from reelscribe.db import chunks as chunks_db
from workers import merge, stages
from workers.context import JobContext
from workers.observability import inner_stage


def run_single_chunk(ctx: JobContext) -> None:
    """Transcribe the job's only chunk here, then merge it here."""
    message = CurrentMessage.get_current_message()
    if message is not None:
        # While the chunk runs, the message it waits on is this one (in flight).
        held = broker_redis.message_id(message)
        ctx.rt.call(chunks_db.set_message_id(ctx.rt.pool, ctx.job_id, 0, held))
    # The merge runs after the chunk's span and duration end, as it would
    # after the chunk's message; the chunk says whether it was the last.
    last: list[JobContext] = []
    with inner_stage(queue.STAGES[queue.TRANSCRIBE_CHUNK], str(ctx.job_id), chunk=0):
        stages.transcribe_chunk(ctx.rt, ctx.job_id, 0, then=last.append, in_place=True)
    if last:
        retries = int(message.options.get("retries", 0)) if message is not None else 0
        with inner_stage(queue.STAGES[queue.MERGE_JOB], str(ctx.job_id)):
            merge.merge(ctx.rt, ctx.job_id, retries)
