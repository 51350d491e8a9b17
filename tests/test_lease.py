"""A worker keeps the messages it runs while it lives, and loses them when it dies.

The Redis broker gives a worker's messages to another worker once the first
one's heartbeat is older than `broker_heartbeat_timeout_s`. These tests run on
a private stack (`tests/support/drills_stack.py`) with a 2 s timeout and the
broker's redelivery sweep on every poll, so a lapse shows within seconds:

1. A stage that runs well past the timeout stays with its worker and is
   claimed once. Worker A polls its queues at most every 30 s once idle
   (`queue_poll_max_ms`): Dramatiq heartbeats only when a consumer polls, so
   without a heartbeat of its own (`workers.broker.BrokerHeartbeat`) A's lease
   lapses a few seconds into the stage and worker B, polling every 100 ms,
   runs it a second time (this test fails so without that middleware).
2. Once A is SIGKILLed, B takes the stage within about the timeout. (That the
   job then ends exactly once is what the kill drill in `test_drills.py`
   checks, 20 kills over.)
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import grpc
import pytest

from server.app import ServerApp
from tests.support.api import Api
from tests.support.drills_stack import DrillStack, Fleet, drill_stack
from tests.support.mediagen import lecture_wav
from tests.support.processes import WorkerProcess
from tests.support.tokens import token_for
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow

#: Seconds of silence after which a worker's messages go to another worker.
TIMEOUT_S = 2.0
#: Media up to this long is one chunk, transcribed inside its prepare message:
#: one long message.
CHUNK_TARGET_S = 900.0
#: Workers sweep for lapsed leases on every poll.
LEASE_ENV = {
    "REELSCRIBE_BROKER_HEARTBEAT_TIMEOUT_S": str(TIMEOUT_S),
    "REELSCRIBE_BROKER_MAINTENANCE_CHANCE": "1000000",
    "REELSCRIBE_CHUNK_TARGET_S": str(CHUNK_TARGET_S),
}
#: Worker A's consumers poll at most every 30 s once idle, so Dramatiq's own
#: heartbeats (sent by polls) lapse a few seconds into its stage (without
#: `BrokerHeartbeat`, B took it over 5.7-10.7 s after A did, in 6 runs). A five-wide
#: beam over 528 s of speech makes its stage last well beyond that (over 264 s
#: it took 12-13 s on a quiet 2-core machine, inside HOLD_S).
SLOW_POLL_ENV = {
    **LEASE_ENV,
    "REELSCRIBE_QUEUE_POLL_MAX_MS": "30000",
    "REELSCRIBE_WHISPER_BEAM_SIZE": "5",
}
#: How long A must keep the stage: well past the timeout and past the point
#: where polls alone would have let the lease lapse.
HOLD_S = 7 * TIMEOUT_S


@pytest.fixture(scope="module")
def stack() -> Iterator[DrillStack]:
    with drill_stack("lease") as s:
        s.settings = s.settings.model_copy(
            update={
                "broker_heartbeat_timeout_s": TIMEOUT_S,
                "broker_maintenance_chance": 1_000_000,
                "chunk_target_s": CHUNK_TARGET_S,
            }
        )
        s.worker_env.update(LEASE_ENV)
        yield s


@pytest.fixture(scope="module")
async def server(stack: DrillStack) -> AsyncIterator[ServerApp]:
    app = await stack.start_server()
    yield app
    await app.stop(grace_s=0.5)


@pytest.fixture(scope="module")
async def api(server: ServerApp) -> AsyncIterator[Api]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield Api(channel, token_for(f"lease-{os.urandom(4).hex()}"))


@pytest.fixture(scope="module")
async def fleet(stack: DrillStack, server: ServerApp) -> AsyncIterator[Fleet]:
    broker = getattr(server.deps.queue, "_broker", None)
    workers = Fleet(
        stack, server.deps.redis, known_ids={str(broker.broker_id)} if broker else set()
    )
    yield workers
    # Killed, not stopped: a graceful stop would wait for the stage to finish.
    for index in range(len(stack.workers)):
        workers.kill(index)


@pytest.fixture(scope="module")
def lecture_528s(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """528 s of speech: one chunk, so one prepare message of many seconds."""
    return lecture_wav(tmp_path_factory.mktemp("lease") / "lecture-528s.wav", repeat=24)


async def _add_worker(fleet: Fleet, env: dict[str, str]) -> int:
    """Start one more worker (one thread) with `env`; returns its index."""
    stack = fleet.stack
    index = len(stack.workers)
    stack.workers.append(
        WorkerProcess(
            stack.settings,
            stack.data_dir / f"worker-{index}.log",
            extra_env={**stack.worker_env, **env},
            threads=1,
        )
    )
    await fleet.ensure_running()
    return index


async def _job_row(pool: asyncpg.Pool, job_id: uuid.UUID) -> asyncpg.Record:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT state, attempts, pending_message_id FROM jobs WHERE id = $1",
            job_id,
        )
    assert row is not None
    return row


async def _held_by(fleet: Fleet, pool: asyncpg.Pool, job_id: uuid.UUID) -> int | None:
    message_id = (await _job_row(pool, job_id))["pending_message_id"]
    return await fleet.holder(message_id) if message_id else None


async def _holder_found(fleet: Fleet, pool: asyncpg.Pool, job_id: uuid.UUID) -> tuple[int] | None:
    """`(index,)` of the worker that holds the job's message (truthy for index 0)."""
    index = await _held_by(fleet, pool, job_id)
    return None if index is None else (index,)


async def test_a_stage_stays_with_its_live_worker_and_leaves_a_dead_one(
    stack: DrillStack, server: ServerApp, api: Api, fleet: Fleet, lecture_528s: Path
) -> None:
    pool = server.deps.pool
    media = (await api.upload(lecture_528s)).name
    slow = await _add_worker(fleet, SLOW_POLL_ENV)
    job_id = uuid.UUID((await api.create(media, skip_cache=True)).name.split("/", 1)[1])
    # A takes the stage at one of its first polls (right after its boot).
    await wait_for(
        lambda: _holder_found(fleet, pool, job_id), timeout_s=60, what="worker A to take it"
    )
    taken = time.monotonic()
    # B polls every 100 ms and sweeps each time: it would take A's stage the
    # moment A's lease lapsed.
    await _add_worker(fleet, {})

    # 1. While A lives, the stage stays with A and is claimed once.
    while (held_s := time.monotonic() - taken) < HOLD_S:
        row = await _job_row(pool, job_id)
        assert row["state"] == "RUNNING", f"the stage ended after {held_s:.1f} s: {dict(row)}"
        holder = await _holder_found(fleet, pool, job_id)
        assert row["attempts"] == 1 and holder == (slow,), (
            f"after {held_s:.1f} s: held by {holder}, claimed {row['attempts']} times"
        )
        await asyncio.sleep(0.2)

    # 2. Once A dies, B (the only worker left) claims the stage within about
    # the timeout: the lease lapses, and B's next poll sweeps it back to the queue.
    fleet.kill(slow)
    killed = time.monotonic()

    async def claimed_again() -> asyncpg.Record | None:
        row = await _job_row(pool, job_id)
        return row if row["attempts"] > 1 else None

    row = await wait_for(
        claimed_again, timeout_s=30, interval_s=0.05, what="worker B to claim the stage"
    )
    picked_s = time.monotonic() - killed
    print(f"lease: held {held_s:.1f} s, claimed again {picked_s:.2f} s after the kill")
    assert row["state"] == "RUNNING" and row["attempts"] == 2, dict(row)
    assert picked_s < TIMEOUT_S + 2.0, f"claimed again {picked_s:.1f} s after the kill"
