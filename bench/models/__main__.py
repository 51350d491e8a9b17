"""Speech models compared: word error rate and speed, end to end vs standalone.

    .venv/bin/python -m bench.models [--minutes 3] [--processes 2] [--record]

For each installed model (tiny.en, base), on the project's real speech — the
spoken clips in tests/media (with their .txt) and a generated lecture
(bench/lecture.py, whose text is known) — in one run:

- standalone faster-whisper with the model (all cores, the same decoding
  settings as bench.pipeline);
- the real stack (embedded Postgres and Valkey, gRPC server, Dramatiq
  workers), one job per recording with `options.model` set;
- WER (bench/wer.py) of both against the reference text, pooled over all
  recordings (errors over reference words);
- time on the lecture, standalone and end to end (upload to SUCCEEDED)
  alternating `--repeats` times, best of each kept: on a machine shared with
  other work, both ways see the same load.

Jobs name no language, as users' jobs do: base detects it, as standalone base
does. Prints the table; `--record` writes it to BENCHMARKS.md. `relative_time`
in reelscribe/speech_models.py is standalone base / standalone tiny.en here.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from reelscribe_client import ReelscribeClient, v1

from bench.harness import bench_stack
from bench.lecture import lecture_text, make_lecture
from bench.record import record
from bench.wer import errors
from reelscribe import media, speech_models
from reelscribe.auth import mint_token
from reelscribe.config import Settings

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "bench" / "out"
ADDRESS = "127.0.0.1:50163"
SECRET = "bench-secret-" + "m" * 32


@dataclass
class Result:
    """One model's figures: wall seconds on the lecture, pooled WER counts."""

    wall_s: float = 0.0
    edits: int = 0
    words: int = 0
    per_file: dict[str, float] = field(default_factory=dict)

    def add(self, name: str, reference: str, hypothesis: str) -> None:
        edits, words = errors(reference, hypothesis)
        self.edits += edits
        self.words += words
        self.per_file[name] = edits / words

    @property
    def wer(self) -> float:
        return self.edits / self.words


def corpus(minutes: float) -> list[tuple[Path, str]]:
    """(recording, reference text): the test clips, then the lecture (timed)."""
    clips = [
        (ogg, ogg.with_suffix(".txt").read_text())
        for ogg in sorted((ROOT / "tests" / "media").glob("*.ogg"))
        if ogg.with_suffix(".txt").exists()
    ]
    lecture = make_lecture(OUT / f"lecture-{minutes:g}min.ogg", minutes)
    return [*clips, (lecture, lecture_text(minutes))]


class Standalone:
    """Plain faster-whisper with one model, all cores, bench.pipeline's settings."""

    def __init__(self, name: str, settings: Settings) -> None:
        os.environ["HF_HUB_OFFLINE"] = "1"
        from faster_whisper import WhisperModel

        self._settings = settings
        self._model = WhisperModel(
            settings.speech_model_dir(name),
            device="cpu",
            compute_type=settings.whisper_compute_type,
            cpu_threads=os.cpu_count() or 1,
        )
        self.transcribe(ROOT / "tests/media/ocean.ogg")  # warm-up

    def transcribe(self, path: Path) -> tuple[float, str]:
        """Wall seconds and text."""
        t0 = time.perf_counter()
        segments, _ = self._model.transcribe(
            str(path),
            beam_size=self._settings.whisper_beam_size,
            word_timestamps=True,
            condition_on_previous_text=False,
        )
        text = " ".join(s.text.strip() for s in segments)
        return time.perf_counter() - t0, text


async def _finish(client: ReelscribeClient, name: str) -> v1.Job:
    final = None
    async for event in client.watch(name):
        final = event.job or final
    if final is None or final.state != v1.JobState.SUCCEEDED:
        raise SystemExit(f"{name} did not succeed: {final}")
    return final


async def _job(client: ReelscribeClient, path: Path, model: str) -> tuple[float, str]:
    """Wall seconds from upload to SUCCEEDED, and the transcript's text."""
    t0 = time.perf_counter()
    uploaded = await client.upload(path)
    job = await client.create_job(
        media=uploaded.name, options=v1.JobOptions(model=model, skip_cache=True)
    )
    await _finish(client, job.name)
    wall = time.perf_counter() - t0
    transcript = await client.transcript(job.name, omit_words=True)
    if transcript.model != model:
        raise SystemExit(f"{job.name} was transcribed by {transcript.model}, not {model}")
    return wall, transcript.text


async def _measure(
    names: list[str],
    recordings: list[tuple[Path, str]],
    settings: Settings,
    warm: int,
    repeats: int,
) -> tuple[dict[str, Result], dict[str, Result]]:
    """WER of every recording both ways; then the lecture timed both ways,
    alternating standalone and end to end `repeats` times (best of each kept),
    so a machine busy with other work weighs on both alike."""
    token = mint_token(SECRET, "bench-models")
    alone = {name: Result() for name in names}
    system = {name: Result() for name in names}
    async with ReelscribeClient(ADDRESS, token, timeout_s=900) as client:
        sample = await client.upload(ROOT / "tests/media/ocean.ogg")
        for name in names:
            model = Standalone(name, settings)
            # Load the model in every worker process before timing.
            warmers = [
                await client.create_job(
                    media=sample.name, options=v1.JobOptions(model=name, skip_cache=True)
                )
                for _ in range(warm)
            ]
            for job in warmers:
                await _finish(client, job.name)
            for path, reference in recordings:
                alone[name].add(path.name, reference, model.transcribe(path)[1])
                system[name].add(path.name, reference, (await _job(client, path, name))[1])
            lecture = recordings[-1][0]
            alone_s, system_s = [], []
            for _ in range(repeats):
                alone_s.append(model.transcribe(lecture)[0])
                system_s.append((await _job(client, lecture, name))[0])
            alone[name].wall_s, system[name].wall_s = min(alone_s), min(system_s)
            del model
    return alone, system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="length of the lecture")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--repeats", type=int, default=2, help="timed runs of each (best kept)")
    parser.add_argument("--note", default="", help="a remark for the record (a busy machine)")
    parser.add_argument("--record", action="store_true", help="write BENCHMARKS.md")
    args = parser.parse_args()

    settings = Settings()
    names = [m.name for m in speech_models.installed()]
    names.sort(key=lambda n: speech_models.REGISTRY[n].relative_time)
    recordings = corpus(args.minutes)
    lecture_min = (media.probe(recordings[-1][0]).duration_s or 0.0) / 60
    with bench_stack(ADDRESS, SECRET, workers=(args.processes, 1)):
        alone, system = asyncio.run(
            _measure(names, recordings, settings, args.processes, args.repeats)
        )

    fastest = alone[names[0]].wall_s
    rows = [
        ("recordings", f"{len(recordings) - 1} test clips + a {lecture_min:.2f} min lecture"),
        *(
            (
                f"{name}: WER standalone / end to end",
                f"{alone[name].wer:.1%} / {system[name].wer:.1%} "
                f"({system[name].edits} errors in {system[name].words} words)",
            )
            for name in names
        ),
        *(
            (
                f"{name}: lecture time standalone / end to end",
                f"{alone[name].wall_s:.1f} s / {system[name].wall_s:.1f} s, ratio "
                f"{system[name].wall_s / alone[name].wall_s:.2f} (goal <= 1.00)",
            )
            for name in names
        ),
        *(
            (
                f"{name}: standalone time relative to {names[0]}",
                f"{alone[name].wall_s / fastest:.2f}",
            )
            for name in names[1:]
        ),
    ]
    if args.note:
        rows.append(("note", args.note))
    for name, value in rows:
        print(f"{name:<46} {value}")
    for name in names:
        detail = ", ".join(f"{f} {w:.0%}" for f, w in system[name].per_file.items())
        print(f"  {name} end to end WER per recording: {detail}")
    if args.record:
        args_text = " ".join(a for a in sys.argv[1:] if a != "--record")
        cores = os.cpu_count() or 1
        record(
            "models",
            title="Speech models",
            command=f"python -m bench.models {args_text}".strip(),
            machine=f"{cores} cores, {platform.machine()}, Python {platform.python_version()}",
            day=date.today().isoformat(),
            settings=(
                f"{settings.whisper_compute_type}, beam {settings.whisper_beam_size}, word "
                f"timestamps, no language given; standalone with cpu_threads={cores}; system "
                f"with {args.processes} worker process(es) x 1 thread x "
                f"{settings.whisper_cpu_threads} CTranslate2 thread(s); end to end is upload "
                f"to SUCCEEDED; times are the best of {args.repeats}, standalone and end to end "
                "alternating"
            ),
            rows=rows,
        )


if __name__ == "__main__":
    main()
