"""Short jobs: the fixed cost of one job through the whole stack vs bare faster-whisper.

    .venv/bin/python -m bench.shortjobs [--jobs 10] [--model tiny.en --model base] [--record]

For each model, runs `--jobs` sequential jobs on a 5.6 s spoken clip (`tests/media/ocean.ogg`,
skip_cache, default stages) through the real stack (embedded Postgres and
Valkey, gRPC server, Dramatiq workers), each timed from the client's first
upload byte to the terminal event, and counts the CPU-seconds every process
of the stack spent (server, workers, Postgres, Valkey). The baseline, in the
same run, is bare faster-whisper on the same clip with the same model,
decoding settings (temperature 0, no language given) and one CTranslate2
thread (a worker's), VAD on.
Goals (issue 16): per job <= 1.5x the bare wall time and <= 0.15 CPU-s of
overhead (stack CPU minus bare CPU).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import time
from collections import Counter
from datetime import date
from pathlib import Path

import psutil
from reelscribe_client import ReelscribeClient, v1

from bench.harness import bench_stack, wait_until_idle
from bench.load.__main__ import RATE_ENV
from bench.record import record
from reelscribe.auth import mint_token
from reelscribe.config import Settings

ROOT = Path(__file__).resolve().parents[2]
CLIP = ROOT / "tests" / "media" / "ocean.ogg"
ADDRESS = "127.0.0.1:50171"


def bare(settings: Settings, model_name: str, runs: int) -> tuple[float, float]:
    """Median wall seconds and mean CPU seconds of bare faster-whisper on the clip."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    from faster_whisper import WhisperModel

    model = WhisperModel(
        settings.speech_model_dir(model_name),
        device="cpu",
        compute_type=settings.whisper_compute_type,
        cpu_threads=settings.whisper_cpu_threads,
    )
    walls, cpus = [], []
    for i in range(runs + 1):
        c0, t0 = time.process_time(), time.perf_counter()
        segments, _ = model.transcribe(
            str(CLIP),
            beam_size=settings.whisper_beam_size,
            word_timestamps=True,
            condition_on_previous_text=False,
            temperature=0.0,
            vad_filter=True,
        )
        list(segments)
        if i:  # the first run warms up
            walls.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.fmean(cpus)


def _stack_processes(data_dir: Path, roots: list[int], redis_url: str) -> list[psutil.Process]:
    """Server and worker trees, the embedded Postgres (found by its data dir) and
    Valkey (by its port)."""
    port = redis_url.rsplit(":", 1)[-1].split("/")[0]
    procs: dict[int, psutil.Process] = {}
    for pid in roots:
        root = psutil.Process(pid)
        for p in [root, *root.children(recursive=True)]:
            procs[p.pid] = p
    for p in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(p.info["cmdline"] or ())
        if str(data_dir) in cmdline or ("valkey" in cmdline and f":{port}" in cmdline):
            procs[p.pid] = p
            for child in p.children(recursive=True):
                procs[child.pid] = child
    return list(procs.values())


def _kind(proc: psutil.Process) -> str:
    try:
        cmdline = " ".join(proc.cmdline())
    except psutil.NoSuchProcess:
        return "gone"
    for kind in ("postgres", "valkey", "dramatiq", "server"):
        if kind in cmdline:
            return kind
    return proc.name()


def _cpu(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.NoSuchProcess:
            pass
    return total


async def _jobs(
    token: str, model: str, count: int, data_dir: Path, roots: list[int], redis_url: str
) -> tuple[list[float], float, str]:
    options = v1.JobOptions(skip_cache=True, model=model)
    async with ReelscribeClient(ADDRESS, token, timeout_s=120) as client:
        # Warm both worker processes (model load) first.
        sample = await client.upload(CLIP)
        warm = [await client.create_job(media=sample.name, options=options) for _ in range(4)]
        for job in warm:
            async for _ in client.watch(job.name):
                pass
        await asyncio.sleep(2.0)
        procs = _stack_processes(data_dir, roots, redis_url)
        kinds = Counter(_kind(p) for p in procs)
        counted = ", ".join(f"{name} x{n}" for name, n in sorted(kinds.items()))
        cpu0 = _cpu(procs)
        walls = []
        for _ in range(count):
            t0 = time.perf_counter()
            uploaded = await client.upload(CLIP)
            job = await client.create_job(media=uploaded.name, options=options)
            final = None
            async for event in client.watch(job.name):
                final = event.job or final
            walls.append(time.perf_counter() - t0)
            if final is None or final.state != v1.JobState.SUCCEEDED:
                raise SystemExit(f"job ended {final and final.state}: {final and final.error}")
        await asyncio.sleep(2.0)  # work after the terminal event (webhooks, metrics) counts too
        cpu = (_cpu(procs) - cpu0) / count
        # The jobs really transcribed the clip, with the model asked for.
        transcript = await client.transcript(job.name, omit_words=True)
        if transcript.model != model or "ocean" not in transcript.text.lower():
            raise SystemExit(f"unexpected transcript ({transcript.model}): {transcript.text!r}")
        return walls, cpu, counted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--model", action="append", help="speech model (repeatable)")
    parser.add_argument("--record", action="store_true", help="write BENCHMARKS.md")
    args = parser.parse_args()
    models = args.model or ["tiny.en", "base"]
    settings = Settings()
    cores = os.cpu_count() or 1
    baselines = {m: bare(settings, m, args.jobs) for m in models}
    secret = "bench-secret-" + "s" * 32
    measured: dict[str, tuple[list[float], float]] = {}
    # Rate limits raised, as in bench.load: this measures the jobs, not the limiter.
    with bench_stack(ADDRESS, secret, workers=(cores, 1), extra_env=RATE_ENV) as (
        stack,
        data_dir,
    ):
        assert stack.worker is not None
        wait_until_idle(stack.server.pid)
        token = mint_token(secret, "bench", plan="premium")  # more stored jobs than free
        for m in models:
            walls, stack_cpu, counted = asyncio.run(
                _jobs(
                    token,
                    m,
                    args.jobs,
                    data_dir,
                    [stack.server.pid, stack.worker.pid],
                    stack.urls.redis_url,
                )
            )
            measured[m] = (walls, stack_cpu)
    rows = [("clip", f"{CLIP.name}, 5.6 s of speech")]
    for m in models:
        bare_wall, bare_cpu = baselines[m]
        walls, stack_cpu = measured[m]
        wall = statistics.median(walls)
        rows += [
            (
                f"{m}: bare faster-whisper (baseline)",
                f"{bare_wall:.2f} s wall, {bare_cpu:.2f} CPU-s",
            ),
            (
                f"{m}: Reelscribe, per job (median wall; mean CPU of every stack process)",
                f"{wall:.2f} s wall, {stack_cpu:.2f} CPU-s",
            ),
            (f"{m}: wall ratio", f"{wall / bare_wall:.2f} (goal <= 1.5)"),
            (f"{m}: CPU overhead per job", f"{stack_cpu - bare_cpu:.2f} CPU-s (goal <= 0.15)"),
        ]
    rows.append(("processes counted", counted))
    for name, value in rows:
        print(f"{name:<75} {value}")
    if args.record:
        args_text = " ".join(a for a in sys.argv[1:] if a != "--record")
        record(
            "shortjobs",
            title="Short jobs: fixed cost per job",
            command=f"python -m bench.shortjobs {args_text}".strip(),
            machine=f"{cores} cores, {platform.machine()}, Python {platform.python_version()}",
            day=date.today().isoformat(),
            settings=(
                f"{settings.whisper_compute_type}, beam {settings.whisper_beam_size}, temperature "
                f"0, word timestamps, no language given; {args.jobs} sequential jobs per model, "
                f"skip_cache, upload included; {cores} worker processes x 1 thread; bare "
                f"faster-whisper with {settings.whisper_cpu_threads} CTranslate2 thread, VAD on"
            ),
            rows=rows,
        )


if __name__ == "__main__":
    main()
