"""Memory per process: RSS of the server and of each worker process, per model.

    .venv/bin/python -m bench.memory [--note "machine busy"] [--record]

In one run:

1. Components, each in a fresh Python process (RSS after each step, in
   order): the worker's imports, tiny.en, base, the search embedder (MiniLM
   under ONNX Runtime) and the voice encoder (resemblyzer, torch).
   The first model's row is the baseline "bare faster-whisper" figure. Then
   the baseline for the embedder: a fresh process with the worker's imports,
   tiny.en and the embedder as it was before ONNX (sentence-transformers on
   torch, still installed as the tests' reference).
2. The real stack (embedded Postgres and Valkey, `python -m server`, one
   Dramatiq worker process with one thread) as shipped: the search model is
   loaded on the first query that needs it (`search_model_preload` off).
   RSS of the server and of the worker process idle, after a short tiny.en
   job, after a short base job, after a keyword search and after a hybrid
   search (with the first hybrid query's latency, which pays the load).
   With `--lecture-minutes N` (default 10; 0: skip), also after a tiny.en job
   on the generated N-minute lecture (run after the short tiny.en job, before
   base) (`bench.lecture`): a long transcription
   and the indexing of its hundreds of passages, with the worker's peak RSS
   during that job (sampled every 0.1 s), and once the worker has been idle
   for `worker_model_idle_s` (and a few seconds more) its RSS again: the
   multilingual model that tiny.en's language check loaded is released then.
3. The server with `REELSCRIBE_SEARCH_MODEL_PRELOAD=1` (the model loaded at
   start, as before the load was made lazy), idle.

`--env NAME=VALUE` (repeatable) sets a variable for the whole stack, e.g.
`MALLOC_ARENA_MAX=8` to measure glibc's arenas (the supervisor sets 2 for
worker processes unless the environment says otherwise).

RSS is read with psutil from the kernel; USS (memory no other process shares)
is shown beside it. Prints the table; `--record` writes it to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Coroutine
from datetime import date
from pathlib import Path
from typing import Any

import psutil
from reelscribe_client import ReelscribeClient, v1

from bench.harness import bench_stack, wait_until_idle
from bench.lecture import make_lecture
from bench.record import record
from cli.stack import RunningStack
from reelscribe.auth import mint_token
from reelscribe.config import Settings

ROOT = Path(__file__).resolve().parents[2]
ADDRESS = "127.0.0.1:50173"
SECRET = "bench-secret-" + "r" * 32
CLIP = ROOT / "tests" / "media" / "ocean.ogg"
OUT = ROOT / "bench" / "out"
MIB = 1024**2
GOAL_WORKER_MB = 500
GOAL_SERVER_MB = 400

#: Run in a fresh interpreter: RSS/USS after each step, as JSON lines.
_COMPONENTS = r"""
import json, os, sys
import numpy as np
import psutil
os.environ["HF_HUB_OFFLINE"] = "1"
me = psutil.Process()
def mark(step):
    m = me.memory_full_info()
    print(json.dumps({"step": step, "rss": m.rss, "uss": m.uss}), flush=True)
mark("python + numpy")
os.environ.setdefault("REELSCRIBE_REDIS_URL", "redis://127.0.0.1:1/0")  # not contacted
import workers.actors
mark("worker imports")
from reelscribe.config import Settings
from workers import transcriber
s = Settings()
for name in sys.argv[1:]:
    path = str(s.speech_model_dir(name))
    transcriber.load_model(path, s.whisper_compute_type, s.whisper_cpu_threads)
    mark("+ " + name)
from reelscribe import embeddings
embeddings.get_embedder().embed(["warm up"])
mark("+ search embedder")
from reelscribe.speakers import encoder
encoder.embed([np.full(16000, 0.01, dtype=np.float32)])
mark("+ voice encoder")
"""

#: The embedder before ONNX, for the baseline rows (same marks).
_BASELINE = (
    _COMPONENTS.split("from reelscribe import embeddings")[0]
    + r"""
from sentence_transformers import SentenceTransformer
from reelscribe.embeddings import default_model_dir
model = SentenceTransformer(default_model_dir(), device="cpu", local_files_only=True)
model.encode(["warm up"], normalize_embeddings=True)
mark("+ search embedder before ONNX (torch, sentence-transformers)")
"""
)


def components(models: list[str], script: str = _COMPONENTS) -> list[tuple[str, int, int]]:
    """(step, rss, uss) of a fresh process loading each piece in turn."""
    out = subprocess.run(
        [sys.executable, "-c", script, *models],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return [(r["step"], r["rss"], r["uss"]) for r in rows]


def _sizes(proc: psutil.Process) -> tuple[int, int]:
    info = proc.memory_full_info()
    return info.rss, info.uss


def _worker_processes(stack: RunningStack) -> list[psutil.Process]:
    """The forked Dramatiq worker processes (not the supervisor or Dramatiq's main)."""
    from cli.doctor.memory import reelscribe_processes

    assert stack.worker is not None
    tree = psutil.Process(stack.worker.pid).children(recursive=True)
    workers = {p.pid for p in reelscribe_processes(tree) if p.role == "worker"}
    return [p for p in tree if p.pid in workers]


def _largest(proc: psutil.Process, count: int = 6) -> str:
    """The mappings holding most of `proc`'s RSS (anonymous memory is the heap:
    Python objects, model weights read into memory, arenas)."""
    parts: dict[str, int] = {}
    for m in proc.memory_maps(grouped=True):
        path = m.path if m.path.startswith("/") else "anonymous"
        name = "anonymous" if path == "anonymous" else Path(path).name
        parts[name] = parts.get(name, 0) + m.rss
    top = sorted(parts.items(), key=lambda kv: -kv[1])[:count]
    return ", ".join(f"{name} {rss / MIB:.0f}" for name, rss in top) + " (MB)"


def _fmt(sizes: tuple[int, int]) -> str:
    return f"{sizes[0] / MIB:.0f} MB RSS ({sizes[1] / MIB:.0f} MB USS)"


async def _job(
    client: ReelscribeClient, media: str, model: str, stage: list[str] | None = None
) -> None:
    """Run a job to its end; `stage[0]` follows the stage its events name."""
    job = await client.create_job(media=media, options=v1.JobOptions(model=model, skip_cache=True))
    final = None
    async for event in client.watch(job.name):
        final = event.job or final
        if stage is not None and event.stage:
            stage[0] = event.stage.name.lower()
    if final is None or final.state != v1.JobState.SUCCEEDED:
        raise SystemExit(f"{job.name} did not succeed: {final}")


async def _peaks_during(
    proc: psutil.Process,
    work: Coroutine[Any, Any, None],
    stage: list[str],
    every_s: float = 0.1,
) -> dict[str, int]:
    """The highest RSS of `proc` in each stage (`stage[0]`, as `work` sees it)
    sampled while `work` runs."""
    task = asyncio.ensure_future(work)
    peaks: dict[str, int] = {}
    while not task.done():
        rss = proc.memory_info().rss
        peaks[stage[0]] = max(peaks.get(stage[0], 0), rss)
        await asyncio.wait({task}, timeout=every_s)
    await task
    return peaks


async def _lecture_rows(
    client: ReelscribeClient, worker: list[psutil.Process], lecture: Path, idle_s: float
) -> list[tuple[str, str]]:
    """A long tiny.en job: RSS after it, the peak while it ran, and (when the
    worker releases idle models, `idle_s` > 0) RSS once it has done so."""
    long_media = await client.upload(lecture)
    (proc,) = worker
    cpu0, t0 = sum(proc.cpu_times()[:4]), time.perf_counter()
    stage = ["queued"]
    peaks = await _peaks_during(proc, _job(client, long_media.name, "tiny.en", stage), stage)
    wall, cpu = time.perf_counter() - t0, sum(proc.cpu_times()[:4]) - cpu0
    wait_until_idle(proc.pid)  # the message's end (and its heap trim) is after the event
    return [
        (
            f"worker process after a tiny.en job on the {lecture.stem}",
            f"{_fmt(_sizes(proc))}; peak during the job {max(peaks.values()) / MIB:.0f} MB "
            f"RSS; job {wall:.1f} s wall, worker process {cpu:.1f} CPU-s",
        ),
        (
            "  peak RSS by stage (MB)",
            ", ".join(f"{name} {rss / MIB:.0f}" for name, rss in peaks.items()),
        ),
        (f"  largest parts after the {lecture.stem} job", _largest(proc)),
        *(await _idle_rows(proc, lecture, idle_s)),
    ]


async def _idle_rows(proc: psutil.Process, lecture: Path, idle_s: float) -> list[tuple[str, str]]:
    """RSS once the worker has released the models it stopped using
    (`worker_model_idle_s`; it checks every few seconds)."""
    if idle_s <= 0:
        return []
    await asyncio.sleep(idle_s + 10.0)
    return [
        (
            f"worker process {idle_s + 10:.0f} s after the {lecture.stem} job "
            "(idle models released)",
            _fmt(_sizes(proc)),
        ),
        (f"  largest parts {idle_s + 10:.0f} s after the job", _largest(proc)),
    ]


async def _stack_rows(
    stack: RunningStack, models: list[str], lecture: Path | None, idle_s: float
) -> list[tuple[str, str]]:
    server = psutil.Process(stack.server.pid)
    rows: list[tuple[str, str]] = []
    token = mint_token(SECRET, "bench-memory")
    async with ReelscribeClient(ADDRESS, token, timeout_s=600) as client:
        uploaded = await client.upload(CLIP)
        while not _worker_processes(stack):
            await asyncio.sleep(0.5)
        worker = _worker_processes(stack)
        wait_until_idle(server.pid)
        for proc in worker:
            wait_until_idle(proc.pid)
        rows.append(("server, idle", _fmt(_sizes(server))))
        rows += [("worker process, idle", _fmt(_sizes(p))) for p in worker]
        for model in models:
            await _job(client, uploaded.name, model)
            for proc in worker:
                wait_until_idle(proc.pid)  # the last message ends after the terminal event
            rows += [(f"worker process after a {model} job", _fmt(_sizes(p))) for p in worker]
            rows += [(f"  largest parts after the {model} job", _largest(p)) for p in worker]
            if model == "tiny.en" and lecture is not None:
                rows += await _lecture_rows(client, worker, lecture, idle_s)
        rows.append(("server after the jobs", _fmt(_sizes(server))))
        await client.search("ocean", mode=v1.SearchMode.KEYWORD)
        rows.append(("server after a keyword search", _fmt(_sizes(server))))
        t0 = time.perf_counter()
        await client.search("the sea and its waves")
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        await client.search("waves on the water")
        second = time.perf_counter() - t0
        rows.append(
            (
                "server after a hybrid search",
                f"{_fmt(_sizes(server))}; first hybrid query {first:.2f} s "
                f"(loads the model), next {second * 1000:.0f} ms",
            )
        )
    return rows


def _preloaded_server_row(env: dict[str, str]) -> tuple[str, str]:
    """The server with the search model loaded at start, idle."""
    preload = {**env, "REELSCRIBE_SEARCH_MODEL_PRELOAD": "1"}
    with bench_stack(ADDRESS, SECRET, extra_env=preload) as (stack, _):
        time.sleep(2.0)
        wait_until_idle(stack.server.pid)
        sizes = _sizes(psutil.Process(stack.server.pid))
    return ("server with the search model preloaded at start, idle", _fmt(sizes))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="tiny.en,base", help="models, in job order")
    parser.add_argument("--note", default="", help="a remark for the record (a busy machine)")
    parser.add_argument("--record", action="store_true", help="write BENCHMARKS.md")
    parser.add_argument(
        "--env", action="append", default=[], help="NAME=VALUE for the stack's processes"
    )
    parser.add_argument("--no-baseline", action="store_true", help="skip the baseline process")
    parser.add_argument(
        "--lecture-minutes", type=float, default=10, help="a long tiny.en job (0: skip)"
    )
    args = parser.parse_args()
    models = args.models.split(",")
    env = dict(item.split("=", 1) for item in args.env)

    rows = [
        (f"fresh process: {step}", f"{rss / MIB:.0f} MB RSS ({uss / MIB:.0f} MB USS)")
        for step, rss, uss in components(models)
    ]
    if not args.no_baseline:
        rows += [
            (f"baseline, fresh process: {step}", f"{rss / MIB:.0f} MB RSS ({uss / MIB:.0f} MB USS)")
            for step, rss, uss in components(models[:1], _BASELINE)
            if step.startswith("+")
        ]
    with bench_stack(ADDRESS, SECRET, workers=(1, 1), extra_env=env) as (stack, _):
        lecture = (
            make_lecture(OUT / f"lecture-{args.lecture_minutes:g}min.ogg", args.lecture_minutes)
            if args.lecture_minutes > 0
            else None
        )
        idle_s = float(
            env.get(
                "REELSCRIBE_WORKER_MODEL_IDLE_S",
                Settings.model_fields["worker_model_idle_s"].default,
            )
        )
        rows += asyncio.run(_stack_rows(stack, models, lecture, idle_s))
    rows.append(_preloaded_server_row(env))
    rows.append(
        ("goal", f"worker with tiny.en <= {GOAL_WORKER_MB} MB, server <= {GOAL_SERVER_MB} MB")
    )
    if args.note:
        rows.append(("note", args.note))
    for name, value in rows:
        print(f"{name:<58} {value}")
    if args.record:
        args_text = " ".join(a for a in sys.argv[1:] if a != "--record")
        cores = os.cpu_count() or 1
        record(
            "memory",
            title="Memory per process",
            command=f"python -m bench.memory {args_text}".strip(),
            machine=f"{cores} cores, {platform.machine()}, Python {platform.python_version()}",
            day=date.today().isoformat(),
            settings=(
                "one worker process x 1 thread; a 4 s clip (tests/media/ocean.ogg) per short "
                "job, then the generated lecture; skip_cache; psutil RSS and USS after each "
                "step; server from `python -m server`"
            ),
            rows=rows,
        )


if __name__ == "__main__":
    main()
