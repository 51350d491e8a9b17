"""Batched decoding inside a worker: does it win on this machine?

    .venv/bin/python -m bench.batching [--model tiny.en] [--batch 8] [--repeats 2]

A worker process decodes one chunk at a time on one CTranslate2 thread (one
process per core). This compares, on the same chunks of the generated
lecture (bench/lecture.py, 120 s chunks cut at silences as the pipeline cuts
them), in this one process, alternating `--repeats` times:

- **sequential** — what the workers do: each chunk with long silences
  shortened, decoded window after window (`workers.transcriber.transcribe`:
  greedy, and a chunk with a poorly decoded window decoded again at beam 5);
- **batched** — the chunk's speech packed into windows of at most 30 s at
  silences, each window's features stacked, and the batch encoded and
  decoded at once with faster-whisper's `BatchedInferencePipeline.forward`
  (timestamps on, so segments are split as usual; word timestamps).

Reported: CPU-seconds and wall time (best of the repeats), word error rate
against the lecture's text and segment count. Batching pays on a GPU or with
many threads per process; with one thread per process the matrix products
are already as wide as one core can run.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from faster_whisper import BatchedInferencePipeline, decode_audio
from faster_whisper.audio import pad_or_trim
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import TranscriptionOptions, get_suppressed_tokens

from bench.lecture import lecture_text, make_lecture
from bench.wer import errors
from reelscribe import speech
from reelscribe.config import Settings
from workers import languages, transcriber

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "bench" / "out"
RATE = 16_000


def _options(tokenizer: Tokenizer) -> TranscriptionOptions:
    return TranscriptionOptions(
        beam_size=1,
        best_of=5,
        patience=1,
        length_penalty=1,
        repetition_penalty=1,
        no_repeat_ngram_size=0,
        log_prob_threshold=-1.0,
        no_speech_threshold=0.6,
        compression_ratio_threshold=2.4,
        condition_on_previous_text=False,
        prompt_reset_on_temperature=0.5,
        temperatures=[0.0],
        initial_prompt=None,
        prefix=None,
        suppress_blank=True,
        suppress_tokens=get_suppressed_tokens(tokenizer, [-1]),
        without_timestamps=False,
        max_initial_timestamp=0.0,
        word_timestamps=True,
        prepend_punctuations="\"'“¿([{-",
        append_punctuations="\"'.。,，!！?？:：”)]}、",  # noqa: RUF001 (Whisper's own)
        multilingual=False,
        max_new_tokens=None,
        clip_timestamps="0",
        hallucination_silence_threshold=None,
        hotwords=None,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny.en")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    settings = Settings()
    lecture = make_lecture(OUT / f"lecture-{args.minutes:g}min.ogg", args.minutes)
    reference = lecture_text(args.minutes)
    audio = decode_audio(str(lecture))
    regions = speech.detect_regions(audio)
    plan = speech.plan_chunks(regions, len(audio) / RATE, target_s=settings.chunk_target_s)
    model = transcriber.load_model(
        settings.speech_model_dir(args.model), settings.whisper_compute_type, 1
    )
    keep_s = settings.keep_silence_s
    tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, "transcribe", "en")
    options = _options(tokenizer)
    pipeline = BatchedInferencePipeline(model)

    def sequential() -> list[str]:
        texts = []
        for s, e in plan:
            clip, _ = speech.compact(audio, s, e, regions, keep_silence_s=keep_s)
            _, segments = transcriber.transcribe(
                model, clip, language="en", word_timestamps=True, beam_size=1
            )
            texts += [seg.text for seg in segments]
        return texts

    def batched() -> list[str]:
        texts = []
        for s, e in plan:
            groups = languages.pack(languages.speech_spans(regions, s, e), gap_s=keep_s)
            clips = [
                speech.compact(audio, g[0][0], g[-1][1], regions, keep_silence_s=keep_s)[0]
                for g in groups
            ]
            for b in range(0, len(clips), args.batch):
                part = clips[b : b + args.batch]
                features = np.stack(
                    [pad_or_trim(model.feature_extractor(c)[..., :-1]) for c in part]
                )
                offset, metadata = 0.0, []
                for c in part:
                    metadata.append({"offset": offset, "duration": len(c) / RATE, "segments": []})
                    offset += len(c) / RATE
                pipeline.last_speech_timestamp = 0.0
                for window in pipeline.forward(features, tokenizer, metadata, options):
                    texts += [seg["text"].strip() for seg in window]
        return texts

    ways: dict[str, Callable[[], list[str]]] = {
        "sequential": sequential,
        "batched": batched,
    }
    best: dict[str, tuple[float, float, float, int]] = {}
    for _ in range(args.repeats):
        for name, way in ways.items():
            c0, t0 = time.process_time(), time.perf_counter()
            texts = way()
            cpu, wall = time.process_time() - c0, time.perf_counter() - t0
            edits, words = errors(reference, " ".join(texts))
            previous = best.get(name)
            if previous is None or cpu < previous[0]:
                best[name] = (cpu, wall, edits / words, len(texts))
    audio_min = len(audio) / RATE / 60
    print(
        f"{args.model}, {audio_min:.2f} min in {len(plan)} chunks, 1 thread, best of {args.repeats}"
    )
    for name, (cpu, wall, wer, segments) in best.items():
        print(
            f"{name:<40} {cpu:6.1f} CPU-s  {wall:6.1f} s wall  WER {wer * 100:4.1f} %  "
            f"{segments} segments"
        )


if __name__ == "__main__":
    main()
