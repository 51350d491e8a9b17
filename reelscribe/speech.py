"""Speech/silence regions, chunk planning and silence compaction.

Pure functions over sample arrays and times, so the pipeline's decisions
(where to cut, what to send to the model, how to map times back) are testable
without a model.
"""

from __future__ import annotations

import bisect
import itertools
import math
import threading
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

SAMPLE_RATE_HZ = 16_000


class Samples(Protocol):
    """Mono float32 samples that can be sliced: an array, a memory map, or a
    file read a slice at a time (`workers.decoding.AudioFile`)."""

    def __len__(self) -> int: ...

    def __getitem__(self, key: slice, /) -> npt.NDArray[np.float32]: ...


@dataclass(frozen=True)
class Region:
    """A stretch of the timeline that is speech or silence."""

    start_s: float
    end_s: float
    is_speech: bool

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return self.end_s - self.start_s


#: Windows quieter than this RMS (about -80 dBFS) are silence without asking the VAD.
_DIGITAL_SILENCE_RMS = 1e-4
_GATE_WINDOW_S = 0.5
#: Windows measured per block by the silence gate (about 16 MB of float64).
_GATE_BLOCK_WINDOWS = 256


def _audible_spans(audio: Samples) -> list[tuple[int, int]]:
    """Sample ranges that are not near-digital silence, padded by one window."""
    win = int(_GATE_WINDOW_S * SAMPLE_RATE_HZ)
    n = len(audio) // win
    if n == 0:
        return [(0, len(audio))] if len(audio) else []
    loud = np.empty(n, dtype=bool)
    # A block of windows at a time: `audio` may be a memory map of hours of
    # audio, and a float64 copy of all of it would double what the VAD needs.
    for first in range(0, n, _GATE_BLOCK_WINDOWS):
        last = min(n, first + _GATE_BLOCK_WINDOWS)
        frames = np.asarray(audio[first * win : last * win], dtype=np.float64)
        rms = np.sqrt(np.mean(frames.reshape(last - first, win) ** 2, axis=1))
        loud[first:last] = rms >= _DIGITAL_SILENCE_RMS
    if len(audio) > n * win:
        loud = np.append(loud, True)  # the ragged tail is always checked
    spans: list[tuple[int, int]] = []
    for i in np.flatnonzero(loud).tolist():
        start, end = max(0, (i - 1) * win), min(len(audio), (i + 2) * win)
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
    return spans


#: Audible stretches longer than this are cut (at their quietest moment near
#: each boundary) into pieces the VAD runs on in parallel.
_VAD_PIECE_S = 60.0
#: How far from an ideal boundary a cut may move to find a quiet moment.
_VAD_CUT_SEARCH_S = 5.0


#: Windows (of 32 ms) the voice detector scores per ONNX Runtime call.
#: faster-whisper scores up to 10,000 in one call, and its scratch memory grows
#: with them: a minute-long piece (1,875 windows) took about 40 MB in each of the
#: two threads; 256 at a time take a few MB, at the same CPU, with the same
#: probabilities (the model's state is carried from one call to the next, as
#: faster-whisper carries it between its own calls).
_VAD_WINDOWS_PER_CALL = 256


class _VadInSteps:
    """faster-whisper's Silero VAD model, scoring `_VAD_WINDOWS_PER_CALL` windows per call.

    The same steps as `faster_whisper.vad.SileroVADModel.__call__` (each
    window with the 64 samples before it as context, the recurrent state
    passed on between calls) with a smaller batch; tests/test_speech_vad.py
    checks the probabilities are the same.
    """

    def __init__(self, model: Any) -> None:
        self.model = model

    def __call__(
        self,
        audio: npt.NDArray[np.float32],
        num_samples: int = 512,
        context_size_samples: int = 64,
    ) -> npt.NDArray[np.float32]:
        windows = audio.reshape(-1, num_samples)
        # As faster-whisper does it, to the letter: zeroing the last window's
        # tail through the view also zeroes it in `windows` (its own padded
        # copy of the audio), and that window's score depends on it.
        context = windows[..., -context_size_samples:]
        context[-1] = 0
        context = np.roll(context, 1, 0)
        batched = np.concatenate([context, windows], 1)
        h = np.zeros((1, 1, 128), dtype="float32")
        c = np.zeros((1, 1, 128), dtype="float32")
        outputs = []
        for i in range(0, batched.shape[0], _VAD_WINDOWS_PER_CALL):
            output, h, c = self.model.session.run(
                None, {"input": batched[i : i + _VAD_WINDOWS_PER_CALL], "h": h, "c": c}
            )
            outputs.append(output)
        return np.concatenate(outputs, axis=0)


_vad_lock = threading.Lock()


def _use_vad_in_steps() -> None:
    """Have faster-whisper's `get_speech_timestamps` score with `_VadInSteps`.

    It takes its model from `faster_whisper.vad.get_vad_model()` and offers
    no other way to pass one, so that function is replaced (once per process)
    by one returning the wrapped model.
    """
    from faster_whisper import vad

    with _vad_lock:
        model = vad.get_vad_model()
        if not isinstance(model, _VadInSteps):
            stepped = _VadInSteps(model)
            vad.get_vad_model = lambda: stepped


def detect_regions(
    audio: Samples,
    *,
    min_silence_s: float = 0.3,
    speech_pad_s: float = 0.1,
    threads: int = 1,
) -> list[Region]:
    """Alternating speech and silence regions covering the whole audio.

    Uses the Silero VAD model bundled with faster-whisper (ONNX, on CPU), but
    only on stretches that are not digital silence: an hour of silence costs
    milliseconds instead of seconds. Long stretches are cut into pieces of
    about a minute at their quietest moments (where they are cut does not
    depend on `threads`, so the result does not either), and `threads`
    pieces run at once.
    """
    from concurrent.futures import ThreadPoolExecutor

    from faster_whisper.vad import VadOptions, get_speech_timestamps

    _use_vad_in_steps()
    duration_s = len(audio) / SAMPLE_RATE_HZ
    options = VadOptions(
        min_silence_duration_ms=int(min_silence_s * 1000),
        speech_pad_ms=int(speech_pad_s * 1000),
    )
    pieces = [p for a, b in _audible_spans(audio) for p in _pieces(audio, a, b)]

    def run(piece: tuple[int, int]) -> list[tuple[float, float]]:
        a, b = piece
        return [
            ((a + s["start"]) / SAMPLE_RATE_HZ, (a + s["end"]) / SAMPLE_RATE_HZ)
            for s in get_speech_timestamps(np.asarray(audio[a:b]), options)
        ]

    if threads > 1 and len(pieces) > 1:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            found = list(pool.map(run, pieces))
    else:
        found = [run(p) for p in pieces]
    return regions_from_speech([span for spans in found for span in spans], duration_s)


def _pieces(audio: Samples, start: int, end: int) -> list[tuple[int, int]]:
    """[start, end) cut into pieces of about `_VAD_PIECE_S`, each cut at the
    quietest 10 ms within `_VAD_CUT_SEARCH_S` of its ideal place."""
    piece = int(_VAD_PIECE_S * SAMPLE_RATE_HZ)
    count = max(1, round((end - start) / piece))
    if count == 1:
        return [(start, end)]
    step = (end - start) / count
    search = int(_VAD_CUT_SEARCH_S * SAMPLE_RATE_HZ)
    hop = SAMPLE_RATE_HZ // 100
    cuts = [start]
    for k in range(1, count):
        ideal = start + int(k * step)
        lo, hi = max(cuts[-1] + hop, ideal - search), min(end - hop, ideal + search)
        window = np.asarray(audio[lo:hi], dtype=np.float64)
        frames = len(window) // hop
        if frames == 0:
            continue
        energy = np.mean(window[: frames * hop].reshape(frames, hop) ** 2, axis=1)
        cuts.append(lo + int(np.argmin(energy)) * hop)
    return list(itertools.pairwise([*cuts, end]))


def regions_from_speech(speech: list[tuple[float, float]], duration_s: float) -> list[Region]:
    """Fill the gaps between speech spans with silence regions."""
    regions: list[Region] = []
    cursor = 0.0
    for start, end in speech:
        start, end = max(start, cursor), min(end, duration_s)
        if end <= start:
            continue
        if start > cursor:
            regions.append(Region(cursor, start, False))
        regions.append(Region(start, end, True))
        cursor = end
    if cursor < duration_s:
        regions.append(Region(cursor, duration_s, False))
    return regions


def plan_chunks(
    regions: list[Region], duration_s: float, *, target_s: float, min_s: float = 20.0
) -> list[tuple[float, float]]:
    """Cut the timeline into chunks of about `target_s`, only inside silences.

    Each cut sits in the middle of the silence closest to the ideal boundary,
    so no word is split. Audio without any silence stays one chunk. The
    chunks are of even length (at most `target_s` each): chunks run in
    parallel, and a short last chunk would leave workers idle while the
    others finish long ones.
    """
    if duration_s <= target_s + min_s:
        return [(0.0, duration_s)]
    count = math.ceil(duration_s / target_s)
    midpoints = [(r.start_s + r.end_s) / 2 for r in regions if not r.is_speech]
    cuts: list[float] = []
    last = 0.0
    for k in range(1, count):
        # The ideal boundaries are fixed, so a cut that had to move does not
        # push every later chunk along with it.
        ideal = k * duration_s / count
        # Among the silences that leave both sides at least `min_s` long, the
        # one nearest the ideal boundary.
        lo = bisect.bisect_left(midpoints, last + min_s)
        hi = bisect.bisect_right(midpoints, duration_s - min_s)
        if lo >= hi:
            break
        i = bisect.bisect_left(midpoints, ideal, lo, hi)
        candidates = [midpoints[j] for j in (i - 1, i) if lo <= j < hi]
        last = min(candidates, key=lambda c: abs(c - ideal))
        cuts.append(last)
    bounds = [0.0, *cuts, duration_s]
    return list(itertools.pairwise(bounds))


@dataclass(frozen=True)
class TimeMap:
    """Maps times on a compacted clip back to the original timeline.

    `pieces` holds (compact_start_s, original_start_s, length_s), in order.
    """

    pieces: tuple[tuple[float, float, float], ...]

    def to_original(self, t: float) -> float:
        """The original time of compact time `t`."""
        if not self.pieces:
            return t
        starts = [p[0] for p in self.pieces]
        i = max(0, bisect.bisect_right(starts, t) - 1)
        compact_start, original_start, length = self.pieces[i]
        return original_start + min(max(t - compact_start, 0.0), length)


def compact(
    audio: npt.NDArray[np.float32],
    start_s: float,
    end_s: float,
    regions: list[Region],
    *,
    keep_silence_s: float = 0.6,
) -> tuple[npt.NDArray[np.float32], TimeMap]:
    """The audio between `start_s` and `end_s` with long silences shortened.

    Silences longer than `keep_silence_s` shrink to that length (half kept on
    each side), so the model only spends time on speech, and text cannot be
    invented over long silences. Returns the clip and the map back to the
    original timeline.
    """
    keep: list[tuple[float, float]] = []
    for r in regions:
        s, e = max(r.start_s, start_s), min(r.end_s, end_s)
        if e <= s:
            continue
        if r.is_speech or e - s <= keep_silence_s:
            keep.append((s, e))
        else:
            half = keep_silence_s / 2
            keep.append((s, s + half))
            keep.append((e - half, e))
    if not keep:
        keep = [(start_s, end_s)]
    # Merge touching spans so the map stays small.
    merged: list[list[float]] = []
    for s, e in keep:
        if merged and s - merged[-1][1] < 1e-6:
            merged[-1][1] = e
        else:
            merged.append([s, e])
    parts: list[npt.NDArray[np.float32]] = []
    pieces: list[tuple[float, float, float]] = []
    compact_t = 0.0
    for s, e in merged:
        a, b = round(s * SAMPLE_RATE_HZ), round(e * SAMPLE_RATE_HZ)
        part = audio[a:b]
        if len(part) == 0:
            continue
        parts.append(part)
        length = len(part) / SAMPLE_RATE_HZ
        pieces.append((compact_t, s, length))
        compact_t += length
    clip = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
    return clip.astype(np.float32, copy=False), TimeMap(tuple(pieces))


def speech_end_after(regions: list[Region], t: float) -> float:
    """End of the speech region that contains `t`, or of the next one after it.

    A word's end is clamped to this, so no word runs into the silence that
    follows its speech.
    """
    for r in regions:
        if r.is_speech and r.end_s > t:
            return r.end_s
    return regions[-1].end_s if regions else t


#: Shortest time a stored word lasts. Whisper gives some words no time at all
#: (and a word's end is clamped to its speech region's end, which can meet its
#: start); a word of zero length cannot be highlighted, seeked to or captioned.
MIN_WORD_S = 0.04


def lengthen_words(
    spans: list[tuple[float, float]], *, min_s: float = MIN_WORD_S, end_s: float | None = None
) -> list[tuple[float, float]]:
    """Word spans (in time order) with every word at least `min_s` long where there is room.

    A short word grows into the silence after it (up to the next word's start,
    or `end_s` for the last word), then into the silence before it (down to the
    previous word's end, or 0), and only then takes time from its neighbours,
    never leaving one of them shorter than `min_s`. Words never overlap: a word
    that starts before the previous one ends is moved to that end first.
    """
    out = [[float(a), float(max(a, b))] for a, b in spans]
    for i, word in enumerate(out):
        prev = out[i - 1] if i else None
        nxt = out[i + 1] if i + 1 < len(out) else None
        if prev is not None and word[0] < prev[1]:
            word[0] = prev[1]
            word[1] = max(word[1], word[0])
        need = min_s - (word[1] - word[0])
        if need <= 0:
            continue
        # Into the silence after, then before.
        ceiling = nxt[0] if nxt is not None else (end_s if end_s is not None else word[1] + need)
        grow = min(need, max(0.0, ceiling - word[1]))
        word[1] += grow
        need -= grow
        floor = prev[1] if prev is not None else 0.0
        grow = min(need, max(0.0, word[0] - floor))
        word[0] -= grow
        need -= grow
        # From the neighbours, each keeping at least min_s.
        if need > 0 and nxt is not None:
            take = min(need, max(0.0, nxt[1] - nxt[0] - min_s))
            if take > 0 and nxt[0] <= word[1]:
                nxt[0] += take
                word[1] += take
                need -= take
        if need > 0 and prev is not None:
            take = min(need, max(0.0, prev[1] - prev[0] - min_s))
            if take > 0 and prev[1] >= word[0]:
                prev[1] -= take
                word[0] -= take
    return [(a, b) for a, b in out]
