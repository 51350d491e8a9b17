"""End to end through the running system vs faster-whisper's own ways, same run.

    .venv/bin/python -m bench.pipeline [--minutes 10] [--model tiny.en --model base]
                                       [--processes 2] [--scaling] [--record]

Generates a spoken lecture (espeak-ng, known text), then for each model:

- three baselines in this process, all cores, the same model and decoding
  settings (beam, temperature 0, word timestamps, no conditioning on earlier
  text): plain `WhisperModel.transcribe`; the same with `vad_filter=True`; and
  `BatchedInferencePipeline` (VAD on, its default), batch 8 and 16, the faster
  kept;
- the real stack (embedded Postgres and Valkey, gRPC server, Dramatiq
  workers), timed from the client's first upload byte to the terminal event.

Each way's word error rate against the lecture's text (bench/wer.py) and
segment count are reported beside its time. `--scaling` runs the stack again
with one worker process and projects, from the two measured times, the
lecture's time on more cores. `--record` writes BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import psutil
from reelscribe_client import ReelscribeClient, v1

from bench.harness import bench_stack, wait_until_idle
from bench.lecture import lecture_text, make_lecture
from bench.record import record
from bench.wer import errors
from reelscribe import media
from reelscribe.auth import mint_token
from reelscribe.blobs import owner_prefix
from reelscribe.config import Settings

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "bench" / "out"
ADDRESS = "127.0.0.1:50161"
WARM_CLIP = ROOT / "tests" / "media" / "ocean.ogg"


@dataclass(frozen=True)
class Run:
    """One way of transcribing the lecture: wall seconds, CPU seconds, WER, segments."""

    wall_s: float
    cpu_s: float
    wer: float
    segments: int
    chunks: int = 1

    def describe(self, audio_min: float) -> str:
        return (
            f"{self.wall_s:.1f} s wall, {self.cpu_s / audio_min:.2f} CPU-s per audio-min, "
            f"WER {self.wer * 100:.1f} %, {self.segments} segments"
        )


def _wer(reference: str, hypothesis: str) -> float:
    edits, words = errors(reference, hypothesis)
    return edits / words


def baselines(path: Path, reference: str, settings: Settings, model_name: str) -> dict[str, Run]:
    """Plain, VAD and batched faster-whisper on the lecture, all cores."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    from faster_whisper import BatchedInferencePipeline, WhisperModel

    cores = os.cpu_count() or 1
    model = WhisperModel(
        settings.speech_model_dir(model_name),
        device="cpu",
        compute_type=settings.whisper_compute_type,
        cpu_threads=cores,
    )
    batched = BatchedInferencePipeline(model)
    common: dict[str, Any] = {
        "beam_size": settings.whisper_beam_size,
        "word_timestamps": True,
        "condition_on_previous_text": False,
        "temperature": 0.0,
    }
    ways: dict[str, Any] = {
        "plain": lambda: model.transcribe(str(path), **common),
        "vad_filter": lambda: model.transcribe(str(path), vad_filter=True, **common),
        "batched 8": lambda: batched.transcribe(str(path), batch_size=8, **common),
        "batched 16": lambda: batched.transcribe(str(path), batch_size=16, **common),
    }
    list(model.transcribe(str(WARM_CLIP))[0])  # warm-up
    out: dict[str, Run] = {}
    for name, way in ways.items():
        c0, t0 = time.process_time(), time.perf_counter()
        segments, _ = way()
        texts = [s.text.strip() for s in segments]
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        out[name] = Run(wall, cpu, _wer(reference, " ".join(texts)), len(texts))
        print(f"  {model_name} {name}: {out[name].describe(1.0)}", flush=True)
    return out


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


async def _last_job(client: ReelscribeClient, name: str) -> tuple[v1.Job, int]:
    """The job's terminal state and the number of chunks it was split into."""
    final, chunks = None, 1
    async for event in client.watch(name):
        final = event.job or final
        chunks = max(chunks, event.chunk_count)
    assert final is not None
    return final, chunks


async def _cancel_latency(client: ReelscribeClient, media_name: str, data_dir: Path) -> float:
    """Seconds from CancelJob to the running stage having stopped and cleaned up."""
    job = await client.create_job(media=media_name, options=v1.JobOptions(skip_cache=True))
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


async def _timed_jobs(
    token: str,
    path: Path,
    reference: str,
    models: list[str],
    warm: int,
    procs: list[psutil.Process],
    data_dir: Path,
    cancel: bool,
) -> tuple[dict[str, Run], float | None]:
    runs: dict[str, Run] = {}
    cancel_s = None
    async with ReelscribeClient(ADDRESS, token, timeout_s=900) as client:
        sample = await client.upload(WARM_CLIP)
        for model in models:
            # Load the model in every worker process before timing.
            warmers = [
                await client.create_job(
                    media=sample.name, options=v1.JobOptions(model=model, skip_cache=True)
                )
                for _ in range(warm)
            ]
            for job in warmers:
                await _last_job(client, job.name)
            cpu0 = _tree_cpu(procs)
            t0 = time.perf_counter()
            uploaded = await client.upload(path)
            job = await client.create_job(
                media=uploaded.name, options=v1.JobOptions(model=model, skip_cache=True)
            )
            final, chunks = await _last_job(client, job.name)
            wall = time.perf_counter() - t0
            cpu = _tree_cpu(procs) - cpu0
            if final.state != v1.JobState.SUCCEEDED:
                raise SystemExit(f"job ended {final.state}: {final.error}")
            transcript = await client.transcript(job.name, omit_words=True)
            runs[model] = Run(
                wall, cpu, _wer(reference, transcript.text), len(transcript.segments), chunks
            )
            print(f"  {model} end to end: {runs[model].describe(1.0)}", flush=True)
        if cancel:
            cancel_s = await _cancel_latency(client, uploaded.name, data_dir)
    return runs, cancel_s


def end_to_end(
    path: Path, reference: str, models: list[str], processes: int, *, cancel: bool
) -> tuple[dict[str, Run], float | None]:
    """Each model's run through the system with `processes` worker processes."""
    secret = "bench-secret-" + "b" * 32
    with bench_stack(ADDRESS, secret, workers=(processes, 1)) as (stack, data_dir):
        assert stack.worker is not None
        wait_until_idle(stack.server.pid)
        procs = [psutil.Process(stack.server.pid), psutil.Process(stack.worker.pid)]
        token = mint_token(secret, "bench")
        return asyncio.run(
            _timed_jobs(token, path, reference, models, processes, procs, data_dir, cancel)
        )


def projection(one_s: float, two_s: float, chunks: int) -> str:
    """The lecture's time on more cores from the 1- and 2-process times (Amdahl's
    law fitted to the two points; the work splits into at most `chunks` pieces)."""
    parallel = 2 * (one_s - two_s)
    serial = max(one_s - parallel, 0.0)
    parts = []
    for cores in (4, 8, 16):
        parts.append(f"{cores} cores ≈ {serial + parallel / min(cores, chunks):.1f} s")
    return f"serial {serial:.1f} s + parallel {parallel:.1f} s: " + ", ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--model", action="append", help="speech model (repeatable)")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--scaling", action="store_true", help="also run with 1 worker process")
    parser.add_argument("--record", action="store_true", help="write BENCHMARKS.md")
    args = parser.parse_args()
    models = args.model or ["tiny.en", "base"]

    lecture = make_lecture(OUT / f"lecture-{args.minutes:g}min.ogg", args.minutes)
    reference = lecture_text(args.minutes)
    audio_min = (media.probe(lecture).duration_s or 0.0) / 60
    settings = Settings()
    cores = os.cpu_count() or 1
    base = {m: baselines(lecture, reference, settings, m) for m in models}
    system, cancel_s = end_to_end(lecture, reference, models, args.processes, cancel=True)
    rows: list[tuple[str, str]] = [("audio", f"{audio_min:.2f} min")]
    for m in models:
        best_batched = min((base[m]["batched 8"], base[m]["batched 16"]), key=lambda r: r.wall_s)
        for name, run in base[m].items():
            rows.append((f"{m}: faster-whisper {name} (baseline)", run.describe(audio_min)))
        rows.append((f"{m}: Reelscribe end to end", system[m].describe(audio_min)))
        rows.append(
            (
                f"{m}: end to end / fastest batched",
                f"{system[m].wall_s / best_batched.wall_s:.2f} (goal <= 0.9)",
            )
        )
        rows.append(
            (
                f"{m}: end to end / plain, / vad_filter",
                f"{system[m].wall_s / base[m]['plain'].wall_s:.2f}, "
                f"{system[m].wall_s / base[m]['vad_filter'].wall_s:.2f}",
            )
        )
    if cancel_s is not None:
        rows.append(("cancel -> running stage stopped, files removed", f"{cancel_s:.2f} s"))
    if args.scaling and args.processes == 2:
        one, _ = end_to_end(lecture, reference, models[:1], 1, cancel=False)
        m = models[0]
        speedup = one[m].wall_s / system[m].wall_s
        chunks = system[m].chunks
        rows.append(
            (
                f"{m}: 1 -> 2 worker processes",
                f"{one[m].wall_s:.1f} s -> {system[m].wall_s:.1f} s, "
                f"speedup {speedup:.2f} (goal >= 1.8)",
            )
        )
        rows.append((f"{m}: projection", projection(one[m].wall_s, system[m].wall_s, chunks)))
    for name, value in rows:
        print(f"{name:<52} {value}")
    if args.record:
        args_text = " ".join(a for a in sys.argv[1:] if a != "--record")
        record(
            "pipeline",
            title="Pipeline: end to end vs faster-whisper plain, VAD and batched",
            command=f"python -m bench.pipeline {args_text}".strip(),
            machine=f"{cores} cores, {platform.machine()}, Python {platform.python_version()}",
            day=date.today().isoformat(),
            settings=(
                f"{settings.whisper_compute_type}, beam {settings.whisper_beam_size}, "
                f"temperature 0, word timestamps; baselines with cpu_threads={cores}; system "
                f"with {args.processes} worker process(es) x 1 thread x "
                f"{settings.whisper_cpu_threads} CTranslate2 thread(s), timed from the first "
                "upload byte to the terminal event; WER on the lecture's known text"
            ),
            rows=rows,
        )


if __name__ == "__main__":
    main()
