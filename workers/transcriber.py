"""Speech to text with faster-whisper (CTranslate2), models loaded once per process."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

# The bundled model is loaded from a directory; never reach for a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from faster_whisper import WhisperModel
from faster_whisper.audio import pad_or_trim

from reelscribe import speech_models
from reelscribe.config import Settings
from workers.features import BlockFeatureExtractor


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


class _Whisper(WhisperModel):
    """faster-whisper's model, keeping (per thread) the encoder outputs of the last windows.

    A chunk's windows are identified first (`identify`, from their encoder
    output) and then decoded, each in its language: faster-whisper would
    encode every window a second time, which with base costs more than
    decoding it. The features are compared by digest, so only the very same
    window reuses an output; a chunk has about five windows.
    """

    #: Encoder outputs kept per thread (about 3 MB each with base).
    KEEP = 8

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._kept = threading.local()
        # The same features with a block's scratch memory instead of the whole
        # chunk's (about 100 MB for 2 minutes of speech): `workers.features`.
        self.feature_extractor = BlockFeatureExtractor(**self.feat_kwargs)

    def encode(self, features: np.ndarray) -> Any:
        kept: OrderedDict[bytes, Any] = getattr(self._kept, "outputs", None) or OrderedDict()
        self._kept.outputs = kept
        key = hashlib.blake2b(np.ascontiguousarray(features).tobytes(), digest_size=16).digest()
        if key in kept:
            kept.move_to_end(key)
            return kept[key]
        output = super().encode(features)
        kept[key] = output
        if len(kept) > self.KEEP:
            kept.popitem(last=False)
        return output


@dataclass(frozen=True)
class TranscriptionInfo:
    """What the model reports before the first segment."""

    language: str
    language_probability: float


_ModelKey = tuple[str, str, int]
_models: dict[_ModelKey, WhisperModel] = {}
#: When each loaded model was last handed out (`time.monotonic()`).
_last_used: dict[_ModelKey, float] = {}
#: The model a job last asked for by name (`load_model`), as opposed to one
#: fetched to check or translate (`multilingual_model`).
_job_model: _ModelKey | None = None
_models_lock = threading.Lock()


def load_model(
    model_dir: str, compute_type: str, cpu_threads: int, *, for_job: bool = True
) -> WhisperModel:
    """The model in `model_dir`, loaded once per process (until `release_idle`).

    `for_job` False: fetched to check languages or translate, not because a
    job named it; such a model is the first `release_idle` lets go of.
    """
    global _job_model
    key = (model_dir, compute_type, cpu_threads)
    with _models_lock:
        if key not in _models:
            _models[key] = _Whisper(
                model_dir,
                device="cpu",
                compute_type=compute_type,
                cpu_threads=cpu_threads,
                local_files_only=True,
            )
        _last_used[key] = time.monotonic()
        if for_job:
            _job_model = key
        return _models[key]


def release_idle(idle_s: float, *, now: float | None = None) -> list[str]:
    """Let go of the models not handed out for `idle_s` seconds, except the one
    the last job asked for; the directories of those released.

    The English-only model's language check loads the multilingual model
    (`multilingual_model`, about 170 MB with base) beside the job's own, and
    without this it stays for the process's life. A caller still holding a
    released model keeps it until it is done; the next caller loads it again.
    """
    now = time.monotonic() if now is None else now
    with _models_lock:
        idle = [
            key
            for key, used in _last_used.items()
            if key != _job_model and now - used >= idle_s and key in _models
        ]
        for key in idle:
            del _models[key]
            del _last_used[key]
    return [key[0] for key in idle]


def loaded_models() -> list[str]:
    """The directories of the models this process holds."""
    with _models_lock:
        return [key[0] for key in _models]


#: A window whose average log-probability is below this was decoded poorly
#: (faster-whisper's own `log_prob_threshold`).
LOGPROB_FLOOR = -1.0
#: A window whose text compresses better than this repeats itself
#: (faster-whisper's own `compression_ratio_threshold`).
COMPRESSION_CEILING = 2.4
#: Beam width of the second pass over a chunk the first pass decoded poorly.
FALLBACK_BEAM_SIZE = 5


def _decoded_poorly(seg: RawSegment) -> bool:
    """Whether a segment fails the quality thresholds Whisper itself uses."""
    return seg.avg_logprob < LOGPROB_FLOOR or seg.compression_ratio > COMPRESSION_CEILING


def _raw(seg: Any) -> RawSegment:
    """A faster-whisper segment as this module hands it on."""
    return RawSegment(
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


def _decode(
    model: WhisperModel,
    audio: npt.NDArray[np.float32],
    *,
    language: str | None,
    word_timestamps: bool,
    beam_size: int,
    between_segments: Callable[[], None],
) -> tuple[TranscriptionInfo, list[RawSegment]]:
    segments, info = model.transcribe(
        audio,
        language=language or None,
        word_timestamps=word_timestamps,
        beam_size=beam_size,
        # Temperature 0 only: faster-whisper's default fallback samples at
        # higher temperatures, which makes the same audio give a different
        # transcript on every run. `transcribe` falls back to a wider beam
        # instead, which is deterministic.
        temperature=0.0,
        # Chunks are independent; conditioning on earlier text mostly spreads
        # hallucinations from one window to the next.
        condition_on_previous_text=False,
    )
    raw = []
    # Segments come lazily, one decoding window at a time: the hook runs
    # between them so a cancelled job stops within a window, not a chunk.
    for seg in segments:
        between_segments()
        raw.append(_raw(seg))
    return (
        TranscriptionInfo(language=info.language, language_probability=info.language_probability),
        raw,
    )


def transcribe(
    model: WhisperModel,
    audio: npt.NDArray[np.float32],
    *,
    language: str | None,
    word_timestamps: bool,
    beam_size: int,
    between_segments: Callable[[], None] = lambda: None,
) -> tuple[TranscriptionInfo, Iterator[RawSegment]]:
    """The language detected and the segments of `audio`, decoded deterministically.

    `between_segments` runs before each segment is taken from the decoder (a
    cancellation check may raise there).

    The first pass uses `beam_size` (greedy by default, the fastest). When any
    of its segments fails Whisper's quality thresholds, the whole clip is
    decoded again with a beam of `FALLBACK_BEAM_SIZE`, and the pass whose
    segments score better (duration-weighted log-probability) is kept. The
    same audio therefore always gives the same transcript.
    """
    info, segments = _decode(
        model,
        audio,
        language=language,
        word_timestamps=word_timestamps,
        beam_size=beam_size,
        between_segments=between_segments,
    )
    if beam_size < FALLBACK_BEAM_SIZE and any(_decoded_poorly(s) for s in segments):
        info2, wider = _decode(
            model,
            audio,
            language=language,
            word_timestamps=word_timestamps,
            beam_size=FALLBACK_BEAM_SIZE,
            between_segments=between_segments,
        )
        if _score(wider) >= _score(segments):
            info, segments = info2, wider
    return info, iter(segments)


def multilingual_model(settings: Settings) -> WhisperModel | None:
    """An installed multilingual model (loaded once), or None when none is installed.

    Raises `speech_models.ModelError` when its files are damaged.
    """
    name = next((m.name for m in speech_models.installed() if m.multilingual), None)
    if name is None:
        return None
    return load_model(
        settings.speech_model_dir(name),
        settings.whisper_compute_type,
        settings.whisper_cpu_threads,
        for_job=False,
    )


def translate(
    model: WhisperModel, audio: npt.NDArray[np.float32], *, language: str | None
) -> list[RawSegment]:
    """English text of the speech in `audio` (Whisper's translate task), deterministic;
    `language` is what is spoken (None: detect)."""
    segments, _ = model.transcribe(
        audio,
        task="translate",
        language=language or None,
        temperature=0.0,
        condition_on_previous_text=False,
        beam_size=FALLBACK_BEAM_SIZE,
    )
    # Without word_timestamps, translated segments carry no words.
    return [_raw(seg) for seg in segments]


def is_multilingual(model: WhisperModel) -> bool:
    """Whether the model identifies languages (English-only models do not)."""
    return bool(model.model.is_multilingual)


def identify(model: WhisperModel, audio: npt.NDArray[np.float32]) -> list[tuple[str, float]]:
    """The languages of `audio` (at most 30 s), most probable first, with probabilities.

    One encoder pass of the model over the (padded) window: the model's own
    language-token probabilities, measured, never thresholded here. The
    window's features are cut and padded exactly as decoding cuts its first
    window, so decoding the same audio next reuses the encoder output.
    """
    extractor = model.feature_extractor
    features = extractor(audio)
    window = features[:, : max(1, min(extractor.nb_max_frames, features.shape[-1] - 1))]
    encoded = model.encode(pad_or_trim(window))
    ranked = model.model.detect_language(encoded)[0]
    return [(str(token)[2:-2], float(p)) for token, p in ranked]


def _score(segments: list[RawSegment]) -> float:
    """Duration-weighted mean log-probability; an empty pass scores lowest."""
    total = sum(max(s.end_s - s.start_s, 0.01) for s in segments)
    if not segments:
        return float("-inf")
    return sum(s.avg_logprob * max(s.end_s - s.start_s, 0.01) for s in segments) / total
