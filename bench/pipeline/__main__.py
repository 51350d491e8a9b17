"""End to end through the running system vs standalone faster-whisper.

    .venv/bin/python -m bench.pipeline [--minutes 10] [--processes 2] [--record]

Generates a spoken lecture (espeak-ng), transcribes it once with plain
faster-whisper (same model, same decoding settings, all cores), then starts
the real stack (embedded Postgres and Valkey, gRPC server, Dramatiq workers)
and times upload → job → SUCCEEDED through the gRPC API. Prints both times,
their ratio and CPU-seconds per audio-minute; `--record` writes them to
BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import resource
import sys
import time
from datetime import date
from pathlib import Path

import psutil
from reelscribe_client import ReelscribeClient, v1

from bench.harness import bench_stack
from bench.lecture import make_lecture
from bench.record import record
from reelscribe import media
from reelscribe.auth import mint_token
from reelscribe.blobs import owner_prefix
from reelscribe.config import Settings

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "bench" / "out"
ADDRESS = "127.0.0.1:50161"


def standalone(path: Path, settings: Settings, cpu_threads: int) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds and segment count of plain faster-whisper."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    from faster_whisper import WhisperModel

    model = WhisperModel(
        settings.speech_model_dir(),
        device="cpu",
        compute_type=settings.whisper_compute_type,
        cpu_threads=cpu_threads,
    )
    list(model.transcribe(str(ROOT / "tests/media/ocean.ogg"))[0])  # warm-up
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    segments, _ = model.transcribe(
        str(path),
        beam_size=settings.whisper_beam_size,
        word_timestamps=True,
        condition_on_previous_text=False,
    )
    count = sum(1 for _ in segments)
    wall = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    return wall, cpu, count


def _tree_cpu(procs: list[psutil.Process]) -> float:
    total = 0.0
    for proc in procs:
        for p in [proc, *proc.children(recursive=True)]:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                pass
    return total


def end_to_end(
    path: Path, processes: int, threads: int, cpu_threads: int
) -> tuple[float, float, int, float]:
    """Wall seconds, CPU seconds (server + workers) and segments through the system."""
    secret = "bench-secret-" + "b" * 32
    env = {"REELSCRIBE_WHISPER_CPU_THREADS": str(cpu_threads)}
    with bench_stack(ADDRESS, secret, workers=(processes, threads), extra_env=env) as (
        stack,
        data_dir,
    ):
        assert stack.worker is not None
        procs = [psutil.Process(stack.server.pid), psutil.Process(stack.worker.pid)]
        token = mint_token(secret, "bench")
        return asyncio.run(_timed_job(token, path, processes * threads, procs, data_dir))


async def _last_job(client: ReelscribeClient, name: str) -> v1.Job:
    final = None
    async for event in client.watch(name):
        final = event.job or final
    assert final is not None
    return final


async def _cancel_latency(client: ReelscribeClient, media: str, data_dir: Path) -> float:
    """Seconds from CancelJob to the running stage having stopped and cleaned up."""
    job = await client.create_job(media=media, options=v1.JobOptions(skip_cache=True))
    workdir = data_dir / "work" / owner_prefix("bench") / job.name.split("/")[1]
    async for event in client.watch(job.name):
        if event.job and event.job.stage == v1.Stage.TRANSCRIBE:
            break
    await asyncio.sleep(1.0)  # well inside transcription
    if not workdir.exists():
        raise SystemExit(f"expected the job's scratch directory at {workdir}")
    t0 = time.perf_counter()
    await client.cancel_job(job.name)
    while workdir.exists():
        await asyncio.sleep(0.01)
    return time.perf_counter() - t0


async def _timed_job(
    token: str, path: Path, warm: int, procs: list[psutil.Process], data_dir: Path
) -> tuple[float, float, int, float]:
    async with ReelscribeClient(ADDRESS, token, timeout_s=600) as client:
        # Warm every worker process (model load) with short jobs.
        sample = await client.upload(ROOT / "tests/media/ocean.ogg")
        warmers = [
            await client.create_job(media=sample.name, options=v1.JobOptions(skip_cache=True))
            for _ in range(warm)
        ]
        for job in warmers:
            await _last_job(client, job.name)
        cpu0 = _tree_cpu(procs)
        t0 = time.perf_counter()
        uploaded = await client.upload(path)
        job = await client.create_job(media=uploaded.name)
        final = await _last_job(client, job.name)
        wall = time.perf_counter() - t0
        cpu = _tree_cpu(procs) - cpu0
        if final.state != v1.JobState.SUCCEEDED:
            raise SystemExit(f"job ended {final.state}: {final.error}")
        transcript = await client.transcript(job.name, omit_words=True)
        cancel_s = await _cancel_latency(client, uploaded.name, data_dir)
        return wall, cpu, len(transcript.segments), cancel_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--cpu-threads", type=int, default=1, help="CTranslate2 threads per worker thread"
    )
    parser.add_argument("--record", action="store_true", help="write BENCHMARKS.md")
    args = parser.parse_args()

    lecture = make_lecture(OUT / f"lecture-{args.minutes:g}min.ogg", args.minutes)
    audio_min = (media.probe(lecture).duration_s or 0.0) / 60
    settings = Settings()
    cores = os.cpu_count() or 1
    base_wall, base_cpu, base_segments = standalone(lecture, settings, cpu_threads=cores)
    e2e_wall, e2e_cpu, e2e_segments, cancel_s = end_to_end(
        lecture, args.processes, args.threads, args.cpu_threads
    )
    ratio = e2e_wall / base_wall
    rows = [
        ("audio", f"{audio_min:.2f} min"),
        (
            "standalone faster-whisper (baseline)",
            f"{base_wall:.1f} s wall, "
            f"{base_cpu / audio_min:.2f} CPU-s per audio-min, {base_segments} segments",
        ),
        (
            "Reelscribe end to end",
            f"{e2e_wall:.1f} s wall, "
            f"{e2e_cpu / audio_min:.2f} CPU-s per audio-min, {e2e_segments} segments",
        ),
        ("ratio end to end / standalone", f"{ratio:.2f} (goal <= 1.10)"),
        ("10 min of audio done in", f"{e2e_wall * 10 / audio_min:.1f} s (goal <= 180 s)"),
        ("cancel -> running stage stopped, files removed", f"{cancel_s:.2f} s (goal <= 2 s)"),
    ]
    for name, value in rows:
        print(f"{name:<40} {value}")
    if args.record:
        args_text = " ".join(a for a in sys.argv[1:] if a != "--record")
        command = f"python -m bench.pipeline {args_text}".strip()
        record(
            "pipeline",
            title="Pipeline: end to end vs standalone faster-whisper",
            command=command,
            machine=f"{cores} cores, {platform.machine()}, Python {platform.python_version()}",
            day=date.today().isoformat(),
            settings=(
                f"model {settings.whisper_model_name} {settings.whisper_compute_type}, "
                f"beam {settings.whisper_beam_size}, word timestamps; baseline with "
                f"cpu_threads={cores}; system with {args.processes} worker process(es) x "
                f"{args.threads} thread(s) x {args.cpu_threads} CTranslate2 thread(s)"
            ),
            rows=rows,
        )


if __name__ == "__main__":
    main()
