"""Language identification per segment on bilingual recordings, through the real stack.

Builds recordings whose first half is one language and second half another
(espeak-ng voices, known text), transcribes each with the multilingual model
through the gRPC API (upload → job → transcript), and counts a segment right
when its `language` is the language spoken at its midpoint. The goal counts
segments longer than 5 s. Baseline, same run, same model: one detection for the
whole file (faster-whisper's own, over its first 30 s), given to every segment,
which is what a single job-level language amounted to before.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
from datetime import date
from pathlib import Path

import numpy as np
from reelscribe_client import ReelscribeClient, v1

from bench.harness import bench_stack
from bench.record import record
from reelscribe.auth import mint_token
from reelscribe.config import Settings
from tests.support.mediagen import espeak, write_wav

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "bench" / "out" / "languages"
ADDRESS = "127.0.0.1:50177"
PAUSE_S = 0.7

#: Long sentences (clauses joined by commas) so that Whisper makes segments of
#: several seconds, in each language espeak-ng speaks.
TEXTS = {
    "en": (
        "This morning the train to the city was late again, and many people waited on the "
        "cold platform while they read the news on their phones. In the afternoon we "
        "visited the old museum near the river, where a guide explained how the bridge was "
        "built more than two hundred years ago."
    ),
    "de": (
        "Heute Morgen kam der Zug in die Stadt wieder zu spät, und viele Leute warteten auf "
        "dem kalten Bahnsteig, während sie die Nachrichten auf ihren Telefonen lasen. Am "
        "Nachmittag besuchten wir das alte Museum am Fluss, wo eine Führerin erklärte, wie "
        "die Brücke vor mehr als zweihundert Jahren gebaut wurde."
    ),
    "fr": (
        "Ce matin, le train pour la ville était encore en retard, et beaucoup de gens "
        "attendaient sur le quai froid en lisant les nouvelles sur leur téléphone. L'après-"
        "midi, nous avons visité le vieux musée près de la rivière, où une guide a expliqué "
        "comment le pont a été construit il y a plus de deux cents ans."
    ),
    "es": (
        "Esta mañana el tren a la ciudad llegó tarde otra vez, y mucha gente esperaba en el "
        "andén frío mientras leía las noticias en sus teléfonos. Por la tarde visitamos el "
        "viejo museo junto al río, donde una guía explicó cómo se construyó el puente hace "
        "más de doscientos años."
    ),
}
VOICES = {"en": "en-us", "de": "de", "fr": "fr", "es": "es"}
PAIRS = [("en", "de"), ("en", "fr"), ("en", "es"), ("de", "fr"), ("fr", "es"), ("es", "de")]


def build(first: str, second: str) -> tuple[Path, float]:
    """The recording (WAV) and the time the second language starts."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{first}-{second}.wav"
    a = espeak(TEXTS[first], VOICES[first], path)
    b = espeak(TEXTS[second], VOICES[second], path)
    pause = np.zeros(round(PAUSE_S * 16000), dtype=np.float32)
    write_wav(path, np.concatenate([a, pause, b]))
    return path, (len(a) + len(pause)) / 16000


def whole_file_language(path: Path, settings: Settings) -> str:
    """The baseline: one detection for the whole file (its first 30 s)."""
    from faster_whisper import WhisperModel

    from reelscribe.media import decode_audio

    model = WhisperModel(
        settings.speech_model_dir("base"),
        device="cpu",
        compute_type=settings.whisper_compute_type,
        cpu_threads=os.cpu_count() or 1,
        local_files_only=True,
    )
    language, _, _ = model.detect_language(audio=decode_audio(path, 16000))
    return language


async def _transcripts(token: str, paths: list[Path]) -> list[v1.Transcript]:
    out = []
    async with ReelscribeClient(ADDRESS, token, timeout_s=900) as client:
        for path in paths:
            uploaded = await client.upload(path)
            job = await client.create_job(
                media=uploaded.name, options=v1.JobOptions(model="base", skip_cache=True)
            )
            final = None
            async for event in client.watch(job.name):
                final = event.job or final
            assert final is not None and final.state == v1.JobState.SUCCEEDED, final
            out.append(await client.transcript(job.name, omit_words=True))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", action="store_true", help="write BENCHMARKS.md")
    args = parser.parse_args()
    settings = Settings()
    built = [(pair, *build(*pair)) for pair in PAIRS]
    secret = "bench-secret-" + "l" * 32
    with bench_stack(ADDRESS, secret, workers=(1, 1)):
        transcripts = asyncio.run(
            _transcripts(mint_token(secret, "bench"), [p for _, p, _ in built])
        )
    long_right = long_total = all_right = all_total = base_right = 0
    for ((first, second), path, switch_s), transcript in zip(built, transcripts, strict=True):
        baseline = whole_file_language(path, settings)
        for seg in transcript.segments:
            truth = first if (seg.start_seconds + seg.end_seconds) / 2 < switch_s else second
            right = seg.language == truth
            all_total += 1
            all_right += right
            if seg.end_seconds - seg.start_seconds > 5.0:
                long_total += 1
                long_right += right
                base_right += baseline == truth
        langs = " ".join(f"{s.language}" for s in transcript.segments)
        print(
            f"{first}/{second}: switch at {switch_s:.1f} s; segments: {langs}; "
            f"whole file: {baseline}"
        )
    rows = [
        ("recordings", f"{len(PAIRS)} bilingual ({', '.join('/'.join(p) for p in PAIRS)})"),
        (
            "per-segment accuracy, segments > 5 s",
            f"{long_right / max(long_total, 1):.1%} ({long_right}/{long_total}; goal >= 95 %)",
        ),
        (
            "per-segment accuracy, all segments",
            f"{all_right / max(all_total, 1):.1%} ({all_right}/{all_total})",
        ),
        (
            "baseline: one whole-file detection, segments > 5 s",
            f"{base_right / max(long_total, 1):.1%} ({base_right}/{long_total})",
        ),
    ]
    for name, value in rows:
        print(f"{name:<52} {value}")
    if args.record:
        cores = os.cpu_count() or 1
        record(
            "languages",
            title="Language identification per segment (bilingual recordings)",
            command="python -m bench.languages",
            machine=f"{cores} cores, {platform.machine()}, Python {platform.python_version()}",
            day=date.today().isoformat(),
            settings=(
                f"model base {settings.whisper_compute_type} through the real stack "
                "(1 worker process); espeak-ng voices; baseline with the same model in the same run"
            ),
            rows=rows,
        )
    sys.exit(0)


if __name__ == "__main__":
    main()
