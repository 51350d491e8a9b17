"""Load: N concurrent users while two long jobs transcribe, vs a bare grpc.aio server.

    .venv/bin/python -m bench.load [--users 100] [--long-minutes 5] [--record]

Starts the real stack (embedded Postgres and Valkey, gRPC server, Dramatiq
workers: 2 processes x 1 thread), warms it with two short jobs, starts two
long spoken lectures (bench/lecture.py) transcribing and, once both are in
TRANSCRIBE, N users at once, each with its own token (plan premium) and its
own connection: UploadMedia of a short recording (tests/media, 5-7 s),
CreateJob, WatchJob to the terminal event, GetTranscript and Search of its
own library. Every call is timed and every failed call counted by status
code; any failure fails the run. Calls use raw grpc.aio stubs with generous
deadlines and no retries, so nothing is hidden. Then the same N-user pattern
against a bare grpc.aio server (bench.load.baseline) that answers the same
RPCs, with no work, with responses recorded from the first run.

Long on purpose: one benchmark run, read top to bottom: the user session, the
two stacks it drives (Reelscribe and the bare baseline), and the table built from
the same timing records; `baseline.py` already holds the bare server.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import math
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import grpc
import psutil

from bench.harness import bench_stack
from bench.lecture import make_lecture
from bench.record import record
from reelscribe import media
from reelscribe.auth import mint_token
from reelscribe.v1 import (
    job_pb2,
    job_service_pb2,
    job_service_pb2_grpc,
    search_service_pb2,
    search_service_pb2_grpc,
    transcript_service_pb2,
    transcript_service_pb2_grpc,
)

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "bench" / "out"
SECRET = "bench-secret-" + "l" * 32
ADDRESS = "127.0.0.1:50151"
BARE_PORT = 50152
WORKERS = (2, 1)
#: Limits far above what the run asks for: the benchmark measures capacity, not the limiter.
RATE_ENV = {
    "REELSCRIBE_RATE_LIMIT_PER_S": "100000",
    "REELSCRIBE_RATE_LIMIT_BURST": "100000",
    "REELSCRIBE_RATE_LIMITS": json.dumps(
        {"UploadMedia": [100000, 100000], "CreateJob": [100000, 100000]}
    ),
}
#: Generous client deadlines (seconds): a slow call is measured, not failed.
DEADLINE_S = {
    "UploadMedia": 600.0,
    "CreateJob": 300.0,
    "WatchJob": 3600.0,
    "GetTranscript": 300.0,
    "Search": 300.0,
}
CHUNK_BYTES = 1024 * 1024
#: One TCP connection per user (grpc would otherwise share one per address).
CHANNEL_OPTIONS = [("grpc.use_local_subchannel_pool", 1)]
CALLS = (
    "UploadMedia",
    "CreateJob",
    "WatchJob first event",
    "WatchJob terminal",
    "GetTranscript",
    "Search",
)
TERMINAL = {job_pb2.JOB_STATE_SUCCEEDED, job_pb2.JOB_STATE_FAILED, job_pb2.JOB_STATE_CANCELLED}


@dataclass(frozen=True)
class Clip:
    """A recording to upload and a query its transcript answers."""

    filename: str
    data: bytes
    sha256: str
    query: str
    duration_s: float

    @classmethod
    def load(cls, path: Path, query: str) -> Clip:
        data = path.read_bytes()
        return cls(
            path.name,
            data,
            hashlib.sha256(data).hexdigest(),
            query,
            media.probe(path).duration_s or 0.0,
        )


CLIPS = (
    ("tests/media/ocean.ogg", "deep cold water"),
    ("tests/media/volcano.ogg", "molten rock rises through the crust"),
)


@dataclass
class Run:
    """What one phase measured."""

    latency: dict[str, list[float]] = field(default_factory=lambda: {c: [] for c in CALLS})
    errors: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    sessions: list[float] = field(default_factory=list)
    watch_events: list[int] = field(default_factory=list)
    heartbeats: int = 0
    succeeded: int = 0
    #: Serialized responses of each complete session (for the baseline to replay).
    recorded: list[dict[str, list[bytes]]] = field(default_factory=list)
    start: float = 0.0
    wall_s: float = 0.0

    def fail(self, key: str, detail: str) -> None:
        self.errors[key] += 1
        self.examples.setdefault(key, detail[:300])

    def merge_errors(self, other: Run, prefix: str) -> None:
        for key, count in other.errors.items():
            self.errors[f"{prefix}{key}"] += count
            self.examples.setdefault(f"{prefix}{key}", other.examples[key])


@dataclass
class Measured:
    run: Run
    cpu: dict[str, float]
    long_finish_s: list[float | None] = field(default_factory=list)
    long_transcribing_s: float = 0.0


# -- the client pattern (the same against both servers) -----------------------------------


async def _timed(run: Run, call: str, invoke: Callable[[], Awaitable[T]]) -> T | None:
    t0 = time.perf_counter()
    try:
        reply = await invoke()
    except grpc.aio.AioRpcError as exc:
        run.fail(f"{call}: {exc.code().name}", exc.details() or "")
        return None
    run.latency[call].append(time.perf_counter() - t0)
    return reply


async def _upload_stream(
    clip: Clip,
) -> Any:
    yield job_service_pb2.UploadMediaRequest(
        header=job_service_pb2.UploadHeader(
            filename=clip.filename,
            size_bytes=len(clip.data),
            sha256=clip.sha256,
            upload_id=str(uuid.uuid4()),
        )
    )
    for offset in range(0, len(clip.data), CHUNK_BYTES):
        yield job_service_pb2.UploadMediaRequest(chunk=clip.data[offset : offset + CHUNK_BYTES])


async def _watch(
    jobs: job_service_pb2_grpc.JobServiceStub,
    name: str,
    metadata: tuple[tuple[str, str], ...],
    run: Run,
    on_event: Callable[[job_pb2.JobEvent], None] | None = None,
) -> tuple[job_pb2.Job | None, list[bytes]]:
    """Watch to the end of the stream; the final job if it SUCCEEDED, else None (counted)."""
    t0 = time.perf_counter()
    received: list[bytes] = []
    final: job_pb2.Job | None = None
    call = jobs.WatchJob(
        job_service_pb2.WatchJobRequest(name=name),
        metadata=metadata,
        timeout=DEADLINE_S["WatchJob"],
    )
    try:
        async for reply in call:
            event = reply.event
            if event.kind == job_pb2.JOB_EVENT_KIND_HEARTBEAT:
                run.heartbeats += 1
                continue
            now = time.perf_counter()
            if not received:
                run.latency["WatchJob first event"].append(now - t0)
            received.append(reply.SerializeToString())
            if on_event is not None:
                on_event(event)
            if (
                event.seq
                and event.kind == job_pb2.JOB_EVENT_KIND_STATE_CHANGED
                and event.job.state in TERMINAL
            ):
                final = event.job
                run.latency["WatchJob terminal"].append(now - t0)
    except grpc.aio.AioRpcError as exc:
        run.fail(f"WatchJob: {exc.code().name}", f"{name}: {exc.details() or ''}")
        return None, received
    run.watch_events.append(len(received))
    if final is None:
        run.fail("WatchJob: stream ended without a terminal event", name)
        return None, received
    if final.state != job_pb2.JOB_STATE_SUCCEEDED:
        state = job_pb2.JobState.Name(final.state)
        run.fail(f"job ended {state}", f"{name}: {final.error.reason}: {final.error.message}")
        return None, received
    return final, received


async def _session(channel: grpc.aio.Channel, token: str, clip: Clip, run: Run) -> None:
    """One user: upload, create a job, watch it to the end, read its transcript, search."""
    metadata = (("authorization", f"Bearer {token}"),)
    jobs = job_service_pb2_grpc.JobServiceStub(channel)
    transcripts = transcript_service_pb2_grpc.TranscriptServiceStub(channel)
    search = search_service_pb2_grpc.SearchServiceStub(channel)
    t0 = time.perf_counter()

    uploaded = await _timed(
        run,
        "UploadMedia",
        lambda: jobs.UploadMedia(
            _upload_stream(clip), metadata=metadata, timeout=DEADLINE_S["UploadMedia"]
        ),
    )
    if uploaded is None:
        return
    created = await _timed(
        run,
        "CreateJob",
        lambda: jobs.CreateJob(
            job_service_pb2.CreateJobRequest(
                request_id=str(uuid.uuid4()), media=uploaded.media.name
            ),
            metadata=metadata,
            timeout=DEADLINE_S["CreateJob"],
        ),
    )
    if created is None:
        return
    name = created.job.name
    final, events = await _watch(jobs, name, metadata, run)
    if final is None:
        return
    transcript = await _timed(
        run,
        "GetTranscript",
        lambda: transcripts.GetTranscript(
            transcript_service_pb2.GetTranscriptRequest(name=name),
            metadata=metadata,
            timeout=DEADLINE_S["GetTranscript"],
        ),
    )
    if transcript is None:
        return
    if not transcript.transcript.segments:
        run.fail("GetTranscript: empty transcript", name)
        return
    found = await _timed(
        run,
        "Search",
        lambda: search.Search(
            search_service_pb2.SearchRequest(
                query=clip.query, mode=search_service_pb2.SEARCH_MODE_HYBRID, page_size=10
            ),
            metadata=metadata,
            timeout=DEADLINE_S["Search"],
        ),
    )
    if found is None:
        return
    if not any(hit.job == name for hit in found.hits):
        run.fail("Search: the user's own job is not among the hits", f"{name}: {clip.query!r}")
        return
    run.sessions.append(time.perf_counter() - t0)
    run.succeeded += 1
    run.recorded.append(
        {
            "upload": [uploaded.SerializeToString()],
            "create": [created.SerializeToString()],
            "watch": events,
            "transcript": [transcript.SerializeToString()],
            "search": [found.SerializeToString()],
        }
    )


async def _users(address: str, tokens: list[str], clips: list[Clip], run: Run) -> None:
    """All users at once, each on its own connection (connected before the clock starts)."""
    channels = [grpc.aio.insecure_channel(address, options=CHANNEL_OPTIONS) for _ in tokens]
    try:
        ready = await asyncio.gather(
            *(asyncio.wait_for(ch.channel_ready(), 60) for ch in channels), return_exceptions=True
        )
        for outcome in ready:
            if isinstance(outcome, BaseException):
                run.fail("connect", repr(outcome))
        if run.errors:
            return
        run.start = time.perf_counter()
        outcomes = await asyncio.gather(
            *(
                _session(ch, token, clips[i % len(clips)], run)
                for i, (ch, token) in enumerate(zip(channels, tokens, strict=True))
            ),
            return_exceptions=True,
        )
        run.wall_s = time.perf_counter() - run.start
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                run.fail(f"client exception {type(outcome).__name__}", repr(outcome))
    finally:
        for ch in channels:
            await ch.close(None)


# -- Reelscribe ---------------------------------------------------------------------------------


def _token(user: str) -> str:
    return mint_token(SECRET, user, plan="premium")


def _user_tokens(n: int) -> list[str]:
    return [_token(f"load-user-{i:03d}") for i in range(n)]


async def _long_job(path: Path, token: str, run: Run, transcribing: asyncio.Event) -> float | None:
    """Upload and transcribe a long lecture; perf_counter time it finished, None if it failed."""
    clip = Clip.load(path, "")
    metadata = (("authorization", f"Bearer {token}"),)
    try:
        async with grpc.aio.insecure_channel(ADDRESS, options=CHANNEL_OPTIONS) as channel:
            jobs = job_service_pb2_grpc.JobServiceStub(channel)
            uploaded = await _timed(
                run,
                "UploadMedia",
                lambda: jobs.UploadMedia(
                    _upload_stream(clip), metadata=metadata, timeout=DEADLINE_S["UploadMedia"]
                ),
            )
            if uploaded is None:
                return None
            created = await _timed(
                run,
                "CreateJob",
                lambda: jobs.CreateJob(
                    job_service_pb2.CreateJobRequest(
                        request_id=str(uuid.uuid4()), media=uploaded.media.name
                    ),
                    metadata=metadata,
                    timeout=DEADLINE_S["CreateJob"],
                ),
            )
            if created is None:
                return None

            def on_event(event: job_pb2.JobEvent) -> None:
                if event.job.stage == job_pb2.STAGE_TRANSCRIBE:
                    transcribing.set()

            final, _ = await _watch(jobs, created.job.name, metadata, run, on_event)
            return time.perf_counter() if final is not None else None
    finally:
        transcribing.set()  # never leave the users waiting on a failed long job


def _tree(pid: int) -> list[psutil.Process]:
    proc = psutil.Process(pid)
    return [proc, *proc.children(recursive=True)]


def _cpu_s(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def _self_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _processes() -> dict[int, tuple[int, float, str]]:
    """pid -> (parent pid, CPU seconds, command line) of every process on the machine."""
    snapshot = {}
    for p in psutil.process_iter(["ppid", "cpu_times", "cmdline"]):
        times = p.info["cpu_times"]
        if times is not None:
            cmdline = " ".join(p.info["cmdline"] or [])
            snapshot[p.pid] = (p.info["ppid"] or 0, times.user + times.system, cmdline)
    return snapshot


class _Machine:
    """Whole-machine CPU between two points, split into this benchmark's and others'.

    This benchmark's processes: `roots` (and their descendants) and processes whose
    command line contains one of `markers` (the embedded Postgres and Valkey)."""

    def __init__(self, roots: tuple[int, ...], markers: tuple[str, ...] = ()) -> None:
        self._roots, self._markers = roots, markers
        self._times = psutil.cpu_times()
        self._procs = _processes()

    def finish(self) -> dict[str, float]:
        times, procs = psutil.cpu_times(), _processes()
        total = sum(times) - sum(self._times)
        idle = (times.idle - self._times.idle) + (
            getattr(times, "iowait", 0.0) - getattr(self._times, "iowait", 0.0)
        )
        ours = set(self._roots) | {
            pid for pid, (_, _, cmd) in procs.items() if any(m in cmd for m in self._markers)
        }
        grew = True
        while grew:
            children = {pid for pid, (ppid, _, _) in procs.items() if ppid in ours} - ours
            ours |= children
            grew = bool(children)
        others = sum(
            max(0.0, cpu - self._procs.get(pid, (0, 0.0, ""))[1])
            for pid, (_, cpu, _) in procs.items()
            if pid not in ours
        )
        return {
            "machine busy %": 100.0 * (total - idle) / total if total > 0 else 0.0,
            "other processes": others,
        }


async def _drive_reelscribe(
    server_pid: int,
    worker_pid: int,
    markers: tuple[str, ...],
    users: int,
    clips: list[Clip],
    lecture: Path,
) -> tuple[Measured, Run]:
    # Warm-up: load the speech model in both worker processes and the
    # embedding models (worker indexing, server queries) before measuring.
    warm = Run()
    await _users(ADDRESS, [_token("load-warm-0"), _token("load-warm-1")], clips, warm)

    long_run = Run()
    flags = [asyncio.Event(), asyncio.Event()]
    t_long = time.perf_counter()
    long_tasks = [
        asyncio.create_task(_long_job(lecture, _token(f"load-long-{i}"), long_run, flags[i]))
        for i in range(2)
    ]
    await asyncio.gather(*(f.wait() for f in flags))
    transcribing_s = time.perf_counter() - t_long

    server, workers = _tree(server_pid), _tree(worker_pid)
    machine = _Machine((os.getpid(), server_pid, worker_pid), markers)
    cpu0 = (_cpu_s(server), _cpu_s(workers), _self_cpu_s())
    run = Run()
    await _users(ADDRESS, _user_tokens(users), clips, run)
    cpu = {
        "server": _cpu_s(server) - cpu0[0],
        "workers": _cpu_s(workers) - cpu0[1],
        "client": _self_cpu_s() - cpu0[2],
        **machine.finish(),
    }
    finished = await asyncio.gather(*long_tasks)
    run.merge_errors(warm, "warm-up ")
    run.merge_errors(long_run, "long job ")
    return (
        Measured(
            run,
            cpu,
            [None if f is None else f - run.start for f in finished],
            transcribing_s,
        ),
        long_run,
    )


def _reelscribe(users: int, clips: list[Clip], lecture: Path) -> Measured:
    with bench_stack(ADDRESS, SECRET, workers=WORKERS, extra_env=RATE_ENV) as (stack, data_dir):
        assert stack.worker is not None
        try:
            # The embedded Postgres runs under the data dir, Valkey on its own port.
            markers = (str(data_dir), stack.urls.redis_url.rsplit("/", 1)[-1])
            measured, _ = asyncio.run(
                _drive_reelscribe(
                    stack.server.pid, stack.worker.pid, markers, users, clips, lecture
                )
            )
            return measured
        finally:
            # Keep the stack's log for investigating errors (the data dir is temporary).
            log = data_dir / "logs" / "stack.log"
            if log.exists():
                (OUT / "load").mkdir(parents=True, exist_ok=True)
                shutil.copy(log, OUT / "load" / "stack.log")


# -- the bare grpc.aio baseline ---------------------------------------------------------------


def _median_session(run: Run) -> dict[str, list[bytes]]:
    """The recorded responses of the session with the median number of watch events."""
    ordered = sorted(run.recorded, key=lambda r: len(r["watch"]))
    return ordered[len(ordered) // 2]


def _wait_port(port: int) -> None:
    import socket

    for _ in range(400):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"the baseline server did not listen on {port}")


async def _drive_bare(server_pid: int, users: int, clips: list[Clip]) -> Measured:
    address = f"127.0.0.1:{BARE_PORT}"
    warm = Run()
    await _users(address, [_token("load-warm-0"), _token("load-warm-1")], clips, warm)
    server = _tree(server_pid)
    machine = _Machine((os.getpid(), server_pid))
    cpu0 = (_cpu_s(server), _self_cpu_s())
    run = Run()
    await _users(address, _user_tokens(users), clips, run)
    cpu = {
        "server": _cpu_s(server) - cpu0[0],
        "client": _self_cpu_s() - cpu0[1],
        **machine.finish(),
    }
    run.merge_errors(warm, "warm-up ")
    return Measured(run, cpu)


def _bare(users: int, clips: list[Clip], responses: dict[str, list[bytes]]) -> Measured:
    with tempfile.TemporaryDirectory(prefix="reelscribe-bench-load-") as tmp:
        path = Path(tmp) / "responses.json"
        path.write_text(
            json.dumps({k: [base64.b64encode(b).decode() for b in v] for k, v in responses.items()})
        )
        server = subprocess.Popen(
            [sys.executable, "-m", "bench.load.baseline", str(BARE_PORT), str(path)], cwd=ROOT
        )
        try:
            _wait_port(BARE_PORT)
            return asyncio.run(_drive_bare(server.pid, users, clips))
        finally:
            server.terminate()
            server.wait(30)


# -- report ----------------------------------------------------------------------------------


def _pct(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, math.ceil(pct / 100 * len(ordered)) - 1))
    return ordered[k]


def _fmt(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1.0 else f"{seconds:.2f} s"


def _p50_p99(values: list[float]) -> str:
    if not values:
        return "no successful calls"
    return f"p50 {_fmt(_pct(values, 50))}, p99 {_fmt(_pct(values, 99))}"


def _rows(
    users: int,
    clips: list[Clip],
    long_minutes: float,
    ours: Measured,
    bare: Measured,
) -> Iterator[tuple[str, str]]:
    run, base = ours.run, bare.run
    speech_s = sum(clips[i % len(clips)].duration_s for i in range(users))
    yield (
        "users",
        f"{users} at once, each its own token and connection; {speech_s / 60:.1f} min of "
        f"speech in all; {run.succeeded} sessions completed (bare: {base.succeeded})",
    )
    for call in CALLS:
        yield (
            call,
            f"{_p50_p99(run.latency[call])}; bare grpc.aio {_p50_p99(base.latency[call])}",
        )
    yield (
        "whole session (upload → search)",
        f"{_p50_p99(run.sessions)}; bare grpc.aio {_p50_p99(base.sessions)}",
    )
    jobs_per_min = run.succeeded / (run.wall_s / 60) if run.wall_s else 0.0
    yield (
        "users phase wall time",
        f"{run.wall_s:.1f} s, {jobs_per_min:.1f} jobs/min (bare grpc.aio: {base.wall_s:.2f} s)",
    )
    finish = ", ".join("failed" if f is None else f"+{f:.1f} s" for f in ours.long_finish_s)
    yield (
        f"long jobs (2 x {long_minutes:g} min lecture)",
        f"both in TRANSCRIBE {ours.long_transcribing_s:.1f} s after upload began, when the "
        f"users started; finished at {finish} after the users started",
    )
    yield (
        "CPU during the users phase",
        f"server {ours.cpu['server']:.1f} s, workers {ours.cpu['workers']:.1f} s, "
        f"client {ours.cpu['client']:.1f} s, machine {ours.cpu['machine busy %']:.0f}% busy "
        f"(other processes, not this benchmark: {ours.cpu['other processes']:.1f} s); "
        f"bare grpc.aio: server {bare.cpu['server']:.2f} s, client {bare.cpu['client']:.2f} s "
        f"(other processes: {bare.cpu['other processes']:.1f} s)",
    )
    yield (
        "events per watch",
        f"median {statistics.median(run.watch_events) if run.watch_events else 0:g} "
        f"(+ {run.heartbeats} heartbeats in all); the baseline replays "
        f"{len(base.recorded[0]['watch']) if base.recorded else 0} recorded events",
    )
    yield ("errors", _errors_text(run) + "; bare grpc.aio: " + _errors_text(base))


def _errors_text(run: Run) -> str:
    if not run.errors:
        return "none"
    return ", ".join(f"{key} x {count}" for key, count in sorted(run.errors.items()))


def _print_table(ours: Run, bare: Run) -> None:
    print(f"\n{'call':<22} {'Reelscribe p50':>15} {'p99':>11} {'bare p50':>11} {'p99':>11}")
    for call in CALLS:
        cells = [
            _fmt(_pct(values, p)) if values else "-"
            for values in (ours.latency[call], bare.latency[call])
            for p in (50, 99)
        ]
        print(f"{call:<22} {cells[0]:>15} {cells[1]:>11} {cells[2]:>11} {cells[3]:>11}")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument(
        "--long-minutes", type=float, default=5.0, help="length of each of the two long jobs"
    )
    parser.add_argument(
        "--model", default="", help="speech model of every job (default: the server's)"
    )
    parser.add_argument("--record", action="store_true", help="write BENCHMARKS.md")
    args = parser.parse_args()
    if args.model:
        RATE_ENV["REELSCRIBE_WHISPER_MODEL_NAME"] = args.model

    clips = [Clip.load(ROOT / path, query) for path, query in CLIPS]
    lecture = make_lecture(OUT / f"lecture-{args.long_minutes:g}min.ogg", args.long_minutes)
    print(f"Reelscribe: {args.users} users while two {args.long_minutes:g}-min jobs transcribe…")
    ours = _reelscribe(args.users, clips, lecture)
    if not ours.run.recorded:
        for key, count in ours.run.errors.items():
            print(f"  {key} x {count}: {ours.run.examples[key]}", file=sys.stderr)
        raise SystemExit("no session completed: nothing to replay for the baseline")
    print(f"bare grpc.aio: {args.users} users…")
    bare = _bare(args.users, clips, _median_session(ours.run))

    _print_table(ours.run, bare.run)
    rows = list(_rows(args.users, clips, args.long_minutes, ours, bare))
    for name, value in rows:
        print(f"{name:<36} {value}")
    failed = ours.run.errors + bare.run.errors
    if failed:
        print("\nERRORS (first message of each):", file=sys.stderr)
        for label, run in (("Reelscribe", ours.run), ("bare grpc.aio", bare.run)):
            for key, count in sorted(run.errors.items()):
                print(f"  {label}: {key} x {count}: {run.examples[key]}", file=sys.stderr)
        print(f"  stack log: {OUT / 'load' / 'stack.log'}", file=sys.stderr)
    if args.record:
        cores = os.cpu_count() or 1
        args_text = " ".join(a for a in sys.argv[1:] if a != "--record")
        record(
            f"load-{args.model}" if args.model else "load",
            title="Load: concurrent users while long jobs transcribe"
            + (f" ({args.model})" if args.model else " (the server's default model)"),
            command=f"python -m bench.load {args_text}".strip(),
            machine=f"{cores} cores, {platform.machine()}, Python {platform.python_version()}",
            day=date.today().isoformat(),
            settings=(
                f"each user: UploadMedia of a 5-7 s Ogg/Opus recording, CreateJob, WatchJob "
                f"to the end, GetTranscript, Search (hybrid) of its own library; two "
                f"{args.long_minutes:g}-min lectures transcribing when the users start; "
                f"workers {WORKERS[0]} processes x {WORKERS[1]} thread on {cores} cores, so "
                "the short jobs queue behind each other and the long jobs' chunks; rate "
                "limits raised to 100000/s (REELSCRIBE_RATE_LIMIT_PER_S, _BURST, "
                "REELSCRIBE_RATE_LIMITS) to measure capacity, not the limiter; tokens with "
                "plan premium; raw grpc.aio stubs, no retries, deadlines 5-60 min; client, "
                "server, workers, Postgres and Valkey on one machine; baseline: the same "
                "client pattern against a bare grpc.aio server (bench/load/baseline.py) "
                "answering with recorded responses of the same size and doing no work"
            ),
            rows=rows,
        )
    if failed:
        raise SystemExit(f"FAILED: {sum(failed.values())} error(s) — see above")


if __name__ == "__main__":
    main()
