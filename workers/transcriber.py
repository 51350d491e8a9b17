"""Speech to text with faster-whisper (CTranslate2), models loaded once per process."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

# The bundled model is loaded from a directory; never reach for a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from faster_whisper import WhisperModel


@dataclass(frozen=True)
class RawWord:
    """A word as the model timed it (on the clip's clock)."""

    start_s: float
    end_s: float
    text: str
    probability: float


@dataclass(frozen=True)
class RawSegment:
    """A segment as the model produced it (on the clip's clock)."""

    start_s: float
    end_s: float
    text: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    words: tuple[RawWord, ...]


@dataclass(frozen=True)
class TranscriptionInfo:
    """What the model reports before the first segment."""

    language: str
    language_probability: float


_models: dict[tuple[str, str, int], WhisperModel] = {}
_models_lock = threading.Lock()


def load_model(model_dir: str, compute_type: str, cpu_threads: int) -> WhisperModel:
    """The model in `model_dir`, loaded once per process."""
    key = (model_dir, compute_type, cpu_threads)
    with _models_lock:
        if key not in _models:
            _models[key] = WhisperModel(
                model_dir,
                device="cpu",
                compute_type=compute_type,
                cpu_threads=cpu_threads,
                local_files_only=True,
            )
        return _models[key]


def transcribe(
    model: WhisperModel,
    audio: npt.NDArray[np.float32],
    *,
    language: str | None,
    word_timestamps: bool,
    beam_size: int,
) -> tuple[TranscriptionInfo, Iterator[RawSegment]]:
    """Info now, segments lazily as the model produces them."""
    segments, info = model.transcribe(
        audio,
        language=language or None,
        word_timestamps=word_timestamps,
        beam_size=beam_size,
        # Chunks are independent; conditioning on earlier text mostly spreads
        # hallucinations from one window to the next.
        condition_on_previous_text=False,
    )

    def _convert() -> Iterator[RawSegment]:
        for seg in segments:
            yield RawSegment(
                start_s=seg.start,
                end_s=seg.end,
                text=seg.text.strip(),
                avg_logprob=seg.avg_logprob,
                no_speech_prob=seg.no_speech_prob,
                compression_ratio=seg.compression_ratio,
                words=tuple(
                    RawWord(start_s=w.start, end_s=w.end, text=w.word, probability=w.probability)
                    for w in (seg.words or ())
                ),
            )

    return (
        TranscriptionInfo(language=info.language, language_probability=info.language_probability),
        _convert(),
    )
