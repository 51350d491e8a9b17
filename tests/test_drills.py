"""Fault drills: real processes killed, real services restarted.

Every drill runs against a private stack (`tests/support/drills_stack.py`): its own
Postgres, Valkey, workers and server, so restarting them never disturbs the
session stack the other tests share.

1. SIGKILL a worker at random points of every stage, 20 times, while several
   jobs are in flight: each job ends exactly once, without duplicate rows, with
   the transcript an undisturbed run produces.
2. Restart Valkey while jobs transcribe and watchers stream: jobs succeed and
   a watcher that resumes by `after_seq` sees every event once.
3. Restart Postgres under load: calls fail UNAVAILABLE (never INTERNAL) and the
   same server serves again once Postgres is back.
4. Fill the blob storage: uploads fail RESOURCE_EXHAUSTED (STORAGE_FULL),
   leave nothing partial behind, stored media stays intact, and uploads work
   again once space is freed.

Long on purpose: the four drills share one private stack, started once per
module because it is expensive, and the helpers that judge what a job left
behind; splitting them would start that stack once per file.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import random
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest

from reelscribe import blobs
from reelscribe.errors import ResourceExhausted
from reelscribe.v1 import job_pb2, job_service_pb2
from server.app import ServerApp
from tests.support.api import TERMINAL, Api, error_details
from tests.support.drills_stack import DrillStack, Fleet, drill_stack
from tests.support.media import MEDIA_DIR
from tests.support.mediagen import lecture_wav
from tests.support.tokens import token_for
from tests.support.waiting import wait_for

#: Minutes of killing and restarting on a private stack: `pytest -m "not slow"` leaves them out.
pytestmark = pytest.mark.slow

#: The kill drill: how many kills, over how many jobs, how many at a time.
SEED = 20260806
KILLS = 20
MIN_JOBS = 8
MAX_JOBS = 12
IN_FLIGHT = 3
WORKERS = 2
#: Options of every job of the kill drill: transcription, then every derive stage.
DERIVE_OPTIONS: dict[str, Any] = {
    "skip_cache": True,
    "extra_stages": [job_pb2.STAGE_RENDER_CLIPS],
    "highlight_count": 1,
}

#: Stage groups a kill can interrupt, and the stages (jobs.stage) of each.
GROUPS: dict[str, tuple[str, ...]] = {
    "prepare": ("EXTRACT_AUDIO", "DETECT_SPEECH"),
    "transcribe": ("TRANSCRIBE",),
    "merge": ("MERGE", "INDEX"),
    "derive": ("ANALYZE", "HIGHLIGHTS", "RENDER_CLIPS"),
}
#: A kill lands a random delay (up to about the group's duration) after the
#: job is seen in the group, at a random point of the stage.
KILL_DELAY_S = {"prepare": 0.3, "transcribe": 2.0, "merge": 0.3, "derive": 0.3}
#: Kills go to the least-hit stage group a worker is running; every
#: PATIENCE_S without one, to groups hit once more.
PATIENCE_S = 1.0
#: The real client's retryable codes (clients/python: `_RETRYABLE`).
RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)


# -- the private stack --------------------------------------------------------------------


@pytest.fixture(scope="module")
def drills() -> Iterator[DrillStack]:
    with drill_stack() as stack:
        yield stack


@pytest.fixture(scope="module")
async def drill_server(drills: DrillStack) -> AsyncIterator[ServerApp]:
    app = await drills.start_server()
    yield app
    await app.stop(grace_s=0.5)


@pytest.fixture(scope="module")
async def drill_channel(drill_server: ServerApp) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{drill_server.port}") as ch:
        yield ch


@pytest.fixture(scope="module")
def dapi(drill_channel: grpc.aio.Channel) -> Api:
    """One user for the module (each drill makes jobs of its own)."""
    return Api(drill_channel, token_for(f"drill-{os.urandom(4).hex()}"))


@pytest.fixture(scope="module")
async def fleet(drills: DrillStack, drill_server: ServerApp) -> AsyncIterator[Fleet]:
    server_broker = getattr(drill_server.deps.queue, "_broker", None)
    known = {str(server_broker.broker_id)} if server_broker is not None else set()
    workers = Fleet(drills, drill_server.deps.redis, known_ids=known)
    await workers.start(WORKERS)
    yield workers
    workers.stop()


@pytest.fixture(scope="module")
def lecture_44s(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """44 s of speech: two chunks at the drills' 10 s chunk target."""
    return lecture_wav(tmp_path_factory.mktemp("drills") / "lecture-44s.wav", repeat=2)


def _job_id(name: str) -> uuid.UUID:
    return uuid.UUID(name.split("/", 1)[1])


# -- what a job left behind ---------------------------------------------------------------


@dataclass
class Outcome:
    """Everything one job left in Postgres and on disk."""

    state: str
    error_reason: str | None
    attempts: int
    seqs: list[int]
    last_event_seq: int
    terminal_events: int
    #: Per stage: how many STAGE_STARTED events (more than once = interrupted).
    starts: Counter[str]
    #: Claims by `prepare` (STATE_CHANGED into EXTRACT_AUDIO).
    prepare_claims: int
    chunk_attempts: list[int]
    transcripts: int
    segments: list[tuple[float, float, str]]
    segment_idx: list[int]
    words: int
    speech_regions: list[int]
    passages: list[int]
    highlights: list[int]
    clip_keys: list[str | None]
    cost_stages: list[str]
    workdir_exists: bool = False
    clip_files: list[str] = field(default_factory=list)
    #: The log, for failure messages: (seq, kind, stage, message).
    log: list[tuple[int, str, str, str]] = field(default_factory=list)


async def _outcome(pool: asyncpg.Pool, stack: DrillStack, job_id: uuid.UUID) -> Outcome:
    async with pool.acquire() as conn:
        job = await conn.fetchrow("SELECT * FROM jobs WHERE id = $1", job_id)
        assert job is not None
        events = await conn.fetch(
            "SELECT seq, terminal, event FROM job_events WHERE job_id = $1 ORDER BY seq", job_id
        )

        async def ints(sql: str) -> list[int]:
            return [r[0] for r in await conn.fetch(sql, job_id)]

        segments = await conn.fetch(
            "SELECT idx, start_s, end_s, text FROM segments WHERE job_id = $1 ORDER BY idx", job_id
        )
        highlights = await conn.fetch(
            "SELECT idx, clip_blob_key FROM highlights WHERE job_id = $1 ORDER BY idx", job_id
        )
        outcome = Outcome(
            state=job["state"],
            error_reason=job["error_reason"],
            attempts=job["attempts"],
            seqs=[r["seq"] for r in events],
            last_event_seq=job["last_event_seq"],
            terminal_events=sum(r["terminal"] for r in events),
            starts=Counter(),
            prepare_claims=0,
            chunk_attempts=await ints("SELECT attempts FROM chunks WHERE job_id = $1 ORDER BY idx"),
            transcripts=int(
                await conn.fetchval("SELECT count(*) FROM transcripts WHERE job_id = $1", job_id)
            ),
            segments=[(r["start_s"], r["end_s"], r["text"]) for r in segments],
            segment_idx=[r["idx"] for r in segments],
            words=int(await conn.fetchval("SELECT count(*) FROM words WHERE job_id = $1", job_id)),
            speech_regions=await ints(
                "SELECT idx FROM speech_regions WHERE job_id = $1 ORDER BY idx"
            ),
            passages=await ints("SELECT idx FROM search_passages WHERE job_id = $1 ORDER BY idx"),
            highlights=[r["idx"] for r in highlights],
            clip_keys=[r["clip_blob_key"] for r in highlights],
            cost_stages=[
                r[0]
                for r in await conn.fetch(
                    "SELECT stage FROM job_costs WHERE job_id = $1 ORDER BY stage", job_id
                )
            ],
        )
    for row in events:
        event = job_pb2.JobEvent.FromString(row["event"])
        stage = job_pb2.Stage.Name(event.stage).removeprefix("STAGE_")
        kind = job_pb2.JobEventKind.Name(event.kind).removeprefix("JOB_EVENT_KIND_")
        outcome.log.append((event.seq, kind, stage, event.message))
        if event.kind == job_pb2.JOB_EVENT_KIND_STAGE_STARTED:
            outcome.starts[stage] += 1
        elif event.kind == job_pb2.JOB_EVENT_KIND_STATE_CHANGED and stage == "EXTRACT_AUDIO":
            outcome.prepare_claims += 1
    owner_dir = blobs.owner_prefix(job["owner"])
    outcome.workdir_exists = (stack.data_dir / "work" / owner_dir / str(job_id)).exists()
    clips_dir = stack.settings.blob_dir / owner_dir / "clips" / str(job_id)
    outcome.clip_files = sorted(p.name for p in clips_dir.iterdir()) if clips_dir.exists() else []
    return outcome


async def _states(pool: asyncpg.Pool, job_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT id, state FROM jobs WHERE id = ANY($1::uuid[])", job_ids)
    return {r["id"]: r["state"] for r in rows}


async def _wait_terminal(
    pool: asyncpg.Pool, job_ids: list[uuid.UUID], timeout_s: float
) -> dict[uuid.UUID, str]:
    """Wait until every job is terminal; fails naming the stuck ones."""
    terminal = {"SUCCEEDED", "FAILED", "CANCELLED"}
    deadline = time.monotonic() + timeout_s
    while True:
        found = await _states(pool, job_ids)
        if all(found.get(j) in terminal for j in job_ids):
            return found
        if time.monotonic() > deadline:
            async with pool.acquire() as conn:
                stuck = await conn.fetch(
                    "SELECT id, state, stage, attempts, pending_message_id, update_time"
                    " FROM jobs WHERE id = ANY($1::uuid[]) AND state <> ALL($2::text[])",
                    job_ids,
                    sorted(terminal),
                )
            raise AssertionError(f"jobs never finished: {[dict(r) for r in stuck]}")
        await asyncio.sleep(0.2)


# -- 1. SIGKILL at random points of every stage ----------------------------------------


@dataclass
class Kill:
    """One kill: the group aimed at, the job and stage seen, the worker killed."""

    group: str
    job_id: uuid.UUID
    stage: str
    worker: int
    delay_s: float
    at_s: float


async def _find_targets(
    pool: asyncpg.Pool, workers: Fleet, job_ids: list[uuid.UUID], rng: random.Random
) -> dict[str, tuple[int, uuid.UUID, str]]:
    """Per stage group: a running job in it and the worker that runs it right now."""
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT j.id, j.stage, j.attempts, j.pending_message_id,"
            " ARRAY(SELECT c.message_id FROM chunks c WHERE c.job_id = j.id"
            "       AND c.state = 'PENDING' AND c.attempts < 2 AND c.message_id IS NOT NULL)"
            " AS chunk_messages"
            " FROM jobs j WHERE j.id = ANY($1::uuid[]) AND j.state = 'RUNNING'",
            job_ids,
        )
    candidates: list[tuple[str, uuid.UUID, str]] = []
    for row in rows:
        stage = row["stage"]
        if stage == "TRANSCRIBE":
            candidates += [(m, row["id"], stage) for m in row["chunk_messages"]]
        elif row["pending_message_id"] and not (
            # Two interrupted claims at most, so prepare does not run out of attempts.
            stage in GROUPS["prepare"] and row["attempts"] >= 2
        ):
            candidates.append((row["pending_message_id"], row["id"], stage))
    rng.shuffle(candidates)
    found: dict[str, tuple[int, uuid.UUID, str]] = {}
    for message_id, job_id, stage in candidates:
        group = next((g for g, stages in GROUPS.items() if stage in stages), None)
        if group is None or group in found:
            continue
        holder = await workers.holder(message_id)
        if holder is not None:
            found[group] = (holder, job_id, stage)
    return found


async def _holders(pool: asyncpg.Pool, workers: Fleet, job_id: uuid.UUID) -> set[int]:
    """The workers running any message of a job."""
    async with pool.acquire() as conn:
        ids = await conn.fetch(
            "SELECT pending_message_id AS m FROM jobs WHERE id = $1"
            " UNION SELECT message_id FROM chunks WHERE job_id = $1",
            job_id,
        )
    holders = {await workers.holder(r["m"]) for r in ids if r["m"]}
    return {h for h in holders if h is not None}


async def _next_target(
    pool: asyncpg.Pool,
    workers: Fleet,
    job_ids: list[uuid.UUID],
    counts: Counter[str],
    rng: random.Random,
) -> tuple[str, tuple[int, uuid.UUID, str]]:
    """The least-hit stage group that some worker is running (waiting a little for it)."""
    began = time.monotonic()
    while time.monotonic() < began + 60:
        found = await _find_targets(pool, workers, job_ids, rng)
        waited = time.monotonic() - began
        # The least-hit groups first; the longer no job is there, the more others.
        slack = int(waited / PATIENCE_S)
        floor = min(counts[g] for g in GROUPS)
        usable = [g for g in GROUPS if g in found and counts[g] <= floor + slack]
        if usable:
            group = min(usable, key=lambda g: counts[g])
            return group, found[group]
        await asyncio.sleep(0.02)
    raise AssertionError(f"no worker ran any drill job for a minute (kills so far: {counts})")


async def test_sigkill_at_random_points_of_every_stage(
    dapi: Api, drills: DrillStack, drill_server: ServerApp, fleet: Fleet, lecture_44s: Path
) -> None:
    pool = drill_server.deps.pool
    await fleet.ensure_running()
    media = (await dapi.upload(lecture_44s)).name
    reference = _job_id((await dapi.create(media, **DERIVE_OPTIONS)).name)

    rng = random.Random(SEED)
    job_ids: list[uuid.UUID] = []
    kills: list[Kill] = []
    supervisor = asyncio.create_task(fleet.supervise())

    async def submit() -> None:
        """Keep a few jobs in flight, so that every stage keeps coming round."""
        while len(job_ids) < MAX_JOBS and (len(job_ids) < MIN_JOBS or len(kills) < KILLS):
            states = await _states(pool, [reference, *job_ids])
            if sum(s in ("QUEUED", "RUNNING") for s in states.values()) < IN_FLIGHT:
                job_ids.append(_job_id((await dapi.create(media, **DERIVE_OPTIONS)).name))
            await asyncio.sleep(0.1)

    submitter = asyncio.create_task(submit())
    started = time.monotonic()
    try:
        counts: Counter[str] = Counter()
        while len(kills) < KILLS:
            assert not submitter.done() or submitter.exception() is None
            group, (index, job_id, stage) = await _next_target(pool, fleet, job_ids, counts, rng)
            delay_s = rng.uniform(0, KILL_DELAY_S[group])
            await asyncio.sleep(delay_s)
            if index in await _holders(pool, fleet, reference):
                continue  # it moved on to the reference job meanwhile: spare it
            fleet.kill(index)
            counts[group] += 1
            kills.append(Kill(group, job_id, stage, index, delay_s, time.monotonic() - started))
        killed_at = time.monotonic() - started
        await submitter
        finals = await _wait_terminal(pool, [reference, *job_ids], 120)
    finally:
        submitter.cancel()
        supervisor.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await supervisor
        await fleet.ensure_running()
    elapsed = time.monotonic() - started

    # Kills only ever hit a worker running another job's message, so the first
    # job ran undisturbed: the reference every other job must match.
    ref = await _outcome(pool, drills, reference)
    assert ref.state == "SUCCEEDED", ref
    # The media must exercise every stage the drill aims at.
    assert len(ref.chunk_attempts) >= 2 and ref.passages and ref.highlights == [0], ref
    outcomes = {j: await _outcome(pool, drills, j) for j in job_ids}
    summary = (
        f"{len(kills)} kills over {len(job_ids)} jobs in {elapsed:.0f} s, "
        f"(last kill at {killed_at:.0f} s), "
        f"{fleet.restarts} restarts; states {Counter(finals.values())}; "
        f"kills {[(k.group, k.stage, k.worker, round(k.at_s, 1)) for k in kills]}"
    )
    print(summary)
    assert len(kills) == KILLS

    # Every stage group was really interrupted (a stage that starts again was cut short).
    interrupted = {
        "prepare": sum(o.prepare_claims > 1 for o in outcomes.values()),
        "transcribe": sum(any(a > 1 for a in o.chunk_attempts) for o in outcomes.values()),
        "merge": sum(o.starts["MERGE"] > 1 for o in outcomes.values()),
        "derive": sum(any(o.starts[s] > 1 for s in GROUPS["derive"]) for o in outcomes.values()),
    }
    assert all(interrupted.values()), (interrupted, summary)

    for job_id, o in outcomes.items():
        where = f"job {job_id}: {o}"
        # Exactly one terminal state, recorded once, in a gapless log.
        assert o.terminal_events == 1, where
        assert o.seqs == list(range(1, o.last_event_seq + 1)), where
        # No duplicate rows, whatever the outcome.
        assert o.transcripts <= 1 and o.segment_idx == list(range(len(o.segment_idx))), where
        assert o.speech_regions in ([], ref.speech_regions), where
        assert len(o.cost_stages) == len(set(o.cost_stages)), where
        assert not o.workdir_exists, where  # scratch files removed at the end
        if o.state == "FAILED":
            # Only a job whose worker was killed too often may give up, and says so.
            assert o.error_reason == "TOO_MANY_ATTEMPTS", where
            continue
        assert o.state == "SUCCEEDED", where
        assert o.transcripts == 1, where
        assert o.segments == ref.segments, where  # the same transcript, nothing twice
        assert o.words == ref.words, where
        assert o.speech_regions == ref.speech_regions, where
        assert o.passages == ref.passages, where
        assert o.highlights == ref.highlights == [0], where
        assert all(o.clip_keys) and len(o.clip_files) == 1, where
        assert o.cost_stages == ref.cost_stages, where
        assert len(o.chunk_attempts) == len(ref.chunk_attempts), where
    assert sum(o.state == "SUCCEEDED" for o in outcomes.values()) >= len(outcomes) - 2, summary


# -- 2. Valkey restarts while jobs run and watchers stream -------------------------------


@dataclass
class WatchLog:
    """What one resuming watcher received."""

    events: list[job_pb2.JobEvent] = field(default_factory=list)
    received_at: list[float] = field(default_factory=list)
    errors: list[grpc.StatusCode] = field(default_factory=list)
    connects: int = 0


async def _resuming_watch(api: Api, name: str, log: WatchLog, timeout_s: float = 90) -> None:
    """Watch to the terminal event, re-watching after the last seq on errors (as the client)."""
    deadline = time.monotonic() + timeout_s
    last = 0
    while time.monotonic() < deadline:
        log.connects += 1
        call = api.jobs.WatchJob(
            job_service_pb2.WatchJobRequest(name=name, after_seq=last),
            metadata=api.metadata,
            timeout=deadline - time.monotonic(),
        )
        try:
            async for reply in call:
                event = reply.event
                if not event.seq:
                    continue  # snapshot or heartbeat
                log.events.append(event)
                log.received_at.append(time.monotonic())
                last = max(last, event.seq)
                if event.kind == job_pb2.JOB_EVENT_KIND_STATE_CHANGED and (
                    event.job.state in TERMINAL
                ):
                    return
            return  # the server ended the stream
        except grpc.aio.AioRpcError as exc:
            log.errors.append(exc.code())
            if exc.code() not in RETRYABLE or len(log.errors) > 30:
                return  # the real client gives up here
            await asyncio.sleep(0.2)
        finally:
            call.cancel()


async def test_valkey_restart_mid_job(
    dapi: Api, drills: DrillStack, drill_server: ServerApp, fleet: Fleet, lecture_44s: Path
) -> None:
    pool = drill_server.deps.pool
    await fleet.ensure_running()
    supervisor = asyncio.create_task(fleet.supervise())
    try:
        media = (await dapi.upload(lecture_44s)).name
        jobs = [await dapi.create(media, skip_cache=True) for _ in range(2)]
        logs = [WatchLog() for _ in jobs]
        watchers = [
            asyncio.create_task(_resuming_watch(dapi, job.name, log))
            for job, log in zip(jobs, logs, strict=True)
        ]

        async def transcribing() -> bool:
            async with pool.acquire() as conn:
                return bool(
                    await conn.fetchval(
                        "SELECT count(*) FROM jobs WHERE id = ANY($1::uuid[])"
                        " AND stage = 'TRANSCRIBE' AND state = 'RUNNING'",
                        [_job_id(j.name) for j in jobs],
                    )
                )

        await wait_for(transcribing, 60, interval_s=0.05, what="a job to transcribe")
        assert not any(w.done() for w in watchers)
        restart_began = time.monotonic()
        await asyncio.to_thread(drills.valkey.restart)
        restart_ended = time.monotonic()
        await asyncio.wait_for(asyncio.gather(*watchers), 120)

        # Work created after the restart flows too (the server's broker reconnected).
        ocean = (await dapi.upload(MEDIA_DIR / "ocean.ogg")).name
        after = await dapi.create(ocean, skip_cache=True)
        finals = await _wait_terminal(pool, [_job_id(j.name) for j in [*jobs, after]], 60)
    finally:
        supervisor.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await supervisor
    print(
        f"valkey restart took {restart_ended - restart_began:.1f} s; watchers: "
        f"{[(log.connects, [c.name for c in log.errors]) for log in logs]}; "
        f"{fleet.restarts} worker restarts"
    )
    assert set(finals.values()) == {"SUCCEEDED"}, finals
    for job, log in zip(jobs, logs, strict=True):
        where = f"{job.name}: errors {log.errors}, {log.connects} connections"
        assert all(code in RETRYABLE for code in log.errors), where
        seqs = [e.seq for e in log.events]
        assert seqs == list(range(1, len(seqs) + 1)), (seqs, where)  # no gap, no duplicate
        terminal = [e for e in log.events if e.job.state in TERMINAL]
        assert len(terminal) == 1 and terminal[0] is log.events[-1], where
        assert log.events[-1].job.state == job_pb2.JOB_STATE_SUCCEEDED, where
        # The watch was open across the restart: events before it and after it.
        assert log.received_at[0] < restart_began and log.received_at[-1] > restart_ended, where
        async with pool.acquire() as conn:
            last_seq = await conn.fetchval(
                "SELECT last_event_seq FROM jobs WHERE id = $1", _job_id(job.name)
            )
        assert seqs[-1] == last_seq, where


# -- 3. Postgres restarts under load ------------------------------------------------------


@dataclass
class CallRecord:
    """One call of the load loop."""

    method: str
    started: float
    code: grpc.StatusCode


async def test_postgres_restart_mid_load(dapi: Api, drills: DrillStack) -> None:
    # Only the server is under test; no workers keep the CPU for it.
    drills.stop_workers()
    media = (await dapi.upload(MEDIA_DIR / "ocean.ogg")).name
    job = await dapi.create(media)
    records: list[CallRecord] = []
    stop = asyncio.Event()

    calls: dict[str, Callable[[], Awaitable[Any]]] = {
        "GetJob": lambda: dapi.jobs.GetJob(
            job_service_pb2.GetJobRequest(name=job.name), metadata=dapi.metadata, timeout=5
        ),
        "ListJobs": lambda: dapi.jobs.ListJobs(
            job_service_pb2.ListJobsRequest(page_size=5), metadata=dapi.metadata, timeout=5
        ),
        "CreateJob": lambda: dapi.jobs.CreateJob(
            job_service_pb2.CreateJobRequest(
                request_id=str(uuid.uuid4()), media=media, options=job_pb2.JobOptions()
            ),
            metadata=dapi.metadata,
            timeout=5,
        ),
    }

    async def load(method: str) -> None:
        while not stop.is_set():
            began = time.monotonic()
            try:
                await calls[method]()
                code = grpc.StatusCode.OK
            except grpc.aio.AioRpcError as exc:
                code = exc.code()
            records.append(CallRecord(method, began, code))
            await asyncio.sleep(0.02)

    loaders = [asyncio.create_task(load(m)) for m in calls for _ in range(2)]
    try:
        await asyncio.sleep(1.0)
        down_at = time.monotonic()
        await asyncio.to_thread(drills.postgres.stop)
        stopped_at = time.monotonic()
        await asyncio.sleep(2.0)
        await asyncio.to_thread(drills.postgres.start)
        up_at = time.monotonic()
        print(
            f"postgres stopped in {stopped_at - down_at:.1f} s, down for {up_at - stopped_at:.1f} s"
        )
        await asyncio.sleep(4.5)
    finally:
        stop.set()
        await asyncio.gather(*loaders, return_exceptions=True)
        if not drills.postgres.is_running():
            await asyncio.to_thread(drills.postgres.start)

    # Calls well before the stop (one still running when Postgres stops may fail).
    before = [r for r in records if r.started < down_at - 1.0]
    failed = [r for r in records if r.code != grpc.StatusCode.OK]
    codes = Counter((r.method, r.code.name) for r in failed)
    assert before and all(r.code == grpc.StatusCode.OK for r in before), codes
    assert failed, "the outage never reached a call"
    # During the outage: UNAVAILABLE, which clients retry; never INTERNAL.
    assert {r.code for r in failed} == {grpc.StatusCode.UNAVAILABLE}, codes
    # The same server recovers within seconds, for every method.
    recovered_by = up_at + 3.0
    for method in calls:
        late = [r for r in records if r.method == method and r.started >= recovered_by]
        assert late and all(r.code == grpc.StatusCode.OK for r in late), (method, codes)
    assert (await dapi.get(job.name)).name == job.name


# -- 4. The blob storage fills up ---------------------------------------------------------


@pytest.fixture
def small_disk(drills: DrillStack) -> Iterator[Path]:
    """A data directory whose blob store is an 8 MiB tmpfs."""
    data_dir = drills.data_dir / f"small-{os.urandom(3).hex()}"
    blob_dir = data_dir / "blobs"
    blob_dir.mkdir(parents=True)
    try:
        mount = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(blob_dir)],
            capture_output=True,
            text=True,
            check=False,
        )
        problem = mount.stderr.strip() if mount.returncode else ""
    except OSError as exc:  # no mount(8) at all
        problem = str(exc)
    if problem:
        pytest.skip(f"cannot mount a small tmpfs to fill (needs root): {problem}")
    try:
        yield data_dir
    finally:
        subprocess.run(["umount", "-l", str(blob_dir)], check=False)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


async def test_full_disk_fails_uploads_cleanly(drills: DrillStack, small_disk: Path) -> None:
    app = await drills.start_server(data_dir=small_disk)
    blob_dir = app.settings.blob_dir
    pool = app.deps.pool
    rng = random.Random(SEED)
    filler = blob_dir / "filler"
    filler.write_bytes(rng.randbytes(3 * 1024 * 1024))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.port}") as channel:
            api = Api(channel, token_for(f"drill-disk-{os.urandom(4).hex()}"))
            stored: list[tuple[job_pb2.Media, bytes]] = []
            failure: grpc.aio.AioRpcError | None = None
            payload, upload_id, filename = b"", "", ""
            for n in range(8):
                payload, upload_id = rng.randbytes(1536 * 1024), uuid.uuid4().hex
                filename = f"part-{n}.bin"
                try:
                    media = await api.upload_bytes(payload, filename, upload_id=upload_id)
                except grpc.aio.AioRpcError as exc:
                    failure = exc
                    break
                stored.append((media, payload))
            assert failure is not None, "the disk never filled"
            assert stored, "not even the first upload fit"

            # A clear, retryable-later error with a machine-readable reason.
            assert failure.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, failure
            details = error_details(failure)
            assert details["ErrorInfo"].reason == "STORAGE_FULL", details  # type: ignore[attr-defined]
            assert details["QuotaFailure"].violations, details  # type: ignore[attr-defined]

            # Nothing partial is left, and the upload's state says so.
            expected_files = {blob_dir / "filler"}
            async with pool.acquire() as conn:
                for media, data in stored:
                    key = await conn.fetchval(
                        "SELECT blob_key FROM media WHERE id = $1",
                        uuid.UUID(media.name.split("/")[1]),
                    )
                    path = app.deps.blobs.path(key)
                    expected_files.add(path)
                    # Earlier uploads are intact.
                    assert media.sha256 == _sha(data) == _sha(path.read_bytes())
            assert _files(blob_dir) == expected_files
            status = await api.jobs.GetUpload(
                job_service_pb2.GetUploadRequest(upload_id=upload_id),
                metadata=api.metadata,
                timeout=10,
            )
            assert status.stored_bytes == 0 and status.size_bytes == len(payload), status
            assert not status.HasField("media"), status
            async with pool.acquire() as conn:
                row = await conn.fetchrow(
                    "SELECT stored_bytes, media_id FROM uploads WHERE upload_id = $1", upload_id
                )
            assert row is not None and (row["stored_bytes"], row["media_id"]) == (0, None)

            # An upload without an id (not resumable) fails the same way, leaving nothing.
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await api.upload_bytes(rng.randbytes(1536 * 1024), "once.bin")
            assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert _files(blob_dir) == expected_files
            # So does any other blob write (clips use the same store).
            writer = app.deps.blobs.open_writer(f"{blobs.owner_prefix('drill')}/probe")
            with pytest.raises(ResourceExhausted) as full:
                for _ in range(8):
                    await writer.write(rng.randbytes(1024 * 1024))
                await writer.commit()
            assert full.value.reason == "STORAGE_FULL"
            assert _files(blob_dir) == expected_files

            # Space freed: the failed upload goes through, from the start.
            filler.unlink()
            media = await api.upload_bytes(payload, filename, upload_id=upload_id)
            assert media.sha256 == _sha(payload)
            status = await api.jobs.GetUpload(
                job_service_pb2.GetUploadRequest(upload_id=upload_id),
                metadata=api.metadata,
                timeout=10,
            )
            assert status.media.name == media.name and status.stored_bytes == len(payload)
            async with pool.acquire() as conn:
                key = await conn.fetchval(
                    "SELECT blob_key FROM media WHERE id = $1", uuid.UUID(media.name.split("/")[1])
                )
            assert _sha(app.deps.blobs.path(key).read_bytes()) == _sha(payload)
    finally:
        await app.stop(grace_s=0.2)
