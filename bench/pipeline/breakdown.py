"""Where a long job's CPU goes, step by step, in one process (no stack).

    .venv/bin/python -m bench.pipeline.breakdown [--minutes 10] [--model tiny.en] [--record]

Runs the worker's own functions on the generated lecture in the order a job
runs them, each timed by this process's CPU clock: decoding to raw audio
(`media.decode_to_file`), voice activity (`speech.detect_regions`, one
thread), each chunk's decoding (`runs.decode_run`, or `runs.decode_detected`
for a multilingual model), for English-only models the check of doubtful
segments for another language (`runs.flag_other_languages`), and the search
embeddings of the merge. Beside them, plain faster-whisper on the whole
lecture with one thread, the same decoding settings (the baseline, same run).
What the stack adds on top (Postgres, Redis, events, the server) is the
difference between `bench.pipeline`'s CPU figure and the sum here.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from bench.lecture import make_lecture
from bench.record import record
from reelscribe import embeddings, media, speech
from reelscribe.config import Settings
from reelscribe.db import search as search_db
from reelscribe.options import JobOptions
from workers import runs, transcriber

OUT = Path(__file__).resolve().parents[2] / "bench" / "out"


class _Job:
    """What the decoding functions need of a job: settings and a cancel check."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def check_cancelled(self, force: bool = False) -> None:
        """Never cancelled."""


def _cpu(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    c0 = time.process_time()
    out = fn(*args, **kwargs)
    return out, time.process_time() - c0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--record", action="store_true", help="write BENCHMARKS.md")
    args = parser.parse_args()
    os.environ["HF_HUB_OFFLINE"] = "1"
    settings = Settings()
    lecture = make_lecture(OUT / f"lecture-{args.minutes:g}min.ogg", args.minutes)
    job, options = _Job(settings), JobOptions(model=args.model)
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "audio.f32"
        _, cpu = _cpu(media.decode_to_file, lecture, raw, max_duration_s=1e9)
        audio = np.memmap(raw, dtype=np.float32, mode="r")
        audio_min = len(audio) / speech.SAMPLE_RATE_HZ / 60
        rows.append(("audio", f"{audio_min:.2f} min"))
        rows.append(("decode to raw audio (FFmpeg)", f"{cpu:.2f} CPU-s"))
        regions, cpu = _cpu(speech.detect_regions, audio, threads=1)
        rows.append(("voice activity (Silero, 1 thread)", f"{cpu:.2f} CPU-s"))
        plan = speech.plan_chunks(regions, len(audio) / 16000, target_s=settings.chunk_target_s)
        model, load_cpu = _cpu(
            transcriber.load_model,
            settings.speech_model_dir(args.model),
            settings.whisper_compute_type,
            settings.whisper_cpu_threads,
        )
        multilingual = transcriber.is_multilingual(model)
        if not multilingual:
            # Load the language-check model outside the timed checks (a worker loads it once).
            transcriber.multilingual_model(settings)
        decode_cpu = check_cpu = 0.0
        segments: list[dict[str, Any]] = []
        candidates = flagged = 0
        for start_s, end_s in plan:
            if multilingual:
                stored, cpu = _cpu(
                    runs.decode_detected, job, model, audio, regions, start_s, end_s, options
                )
            else:
                stored, cpu = [], 0.0
                for run in runs.language_runs(model, audio, regions, start_s, end_s, options):
                    part, c = _cpu(runs.decode_run, job, model, audio, regions, run, options)
                    stored += part
                    cpu += c
            decode_cpu += cpu
            if not multilingual:
                candidates += sum(runs.is_language_check_candidate(s) for s in stored)
                _, cpu = _cpu(runs.flag_other_languages, job, raw, stored)
                check_cpu += cpu
                flagged += sum(s["other_language_suspected"] for s in stored)
            segments += stored
        rows.append(
            (
                f"{args.model}: decoding {len(plan)} chunks (1 thread)",
                f"{decode_cpu:.2f} CPU-s, {len(segments)} segments",
            )
        )
        if not multilingual:
            rows.append(
                (
                    f"{args.model}: language check of doubtful segments",
                    f"{check_cpu:.2f} CPU-s for {candidates} of {len(segments)} segments, "
                    f"{flagged} flagged",
                )
            )
        items = search_db.passages([(s["start_s"], s["end_s"], s["text"]) for s in segments])
        embedder = embeddings.get_embedder(settings)
        embedder.embed(["warm-up"])
        _, cpu = _cpu(embedder.embed, [p.text for p in items])
        rows.append(("merge: search embeddings", f"{cpu:.2f} CPU-s for {len(items)} passages"))
        total = sum(float(v.split(" CPU-s")[0]) for k, v in rows if "CPU-s" in v and k != "audio")
        per_min = total / audio_min
        rows.append(("sum of the steps", f"{total:.2f} CPU-s ({per_min:.2f} per audio-min)"))
        baseline = _baseline(settings, args.model, lecture)
        rows.append(
            (
                f"{args.model}: faster-whisper plain, 1 thread, whole lecture (baseline)",
                f"{baseline:.2f} CPU-s ({baseline / audio_min:.2f} per audio-min)",
            )
        )
        rows.append(("model load (once per process, not in the sum)", f"{load_cpu:.2f} CPU-s"))
        del audio
    for name, value in rows:
        print(f"{name}: {value}")
    if args.record:
        record(
            "pipeline_breakdown",
            title="Pipeline: where a long job's CPU goes",
            command=f"python -m bench.pipeline.breakdown --model {args.model}",
            machine=(
                f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"
            ),
            day=date.today().isoformat(),
            settings="the worker's functions in one process, process CPU clock per step; "
            "int8, beam 1, temperature 0, word timestamps",
            rows=rows,
        )


def _baseline(settings: Settings, model_name: str, path: Path) -> float:
    from faster_whisper import WhisperModel

    model = WhisperModel(
        settings.speech_model_dir(model_name),
        device="cpu",
        compute_type=settings.whisper_compute_type,
        cpu_threads=1,
    )
    c0 = time.process_time()
    segments, _ = model.transcribe(
        str(path),
        beam_size=settings.whisper_beam_size,
        word_timestamps=True,
        condition_on_previous_text=False,
        temperature=0.0,
    )
    list(segments)
    return time.process_time() - c0


if __name__ == "__main__":
    main()
