"""Which language is spoken where, for stretches of speech identified on their own.

A chunk is decoded with Whisper identifying each 30 s window as it decodes it
(`workers.runs.decode_detected`); a window that holds the end of an English
part and the start of a German one is decoded wholly in one of them, and the
other part comes out doubtful. Such stretches (and, with an English-only
model, doubtful segments) are identified here on their own audio:

1. The stretch's speech regions (from the VAD) are packed into *windows* of at
   most 30 s of speech (Whisper's input) and each window is identified once.
2. A window that is unsure (top probability under `SURE`) or whose language
   differs from a neighbour's may hold a switch: it is identified again
   region by region (long regions in 30 s pieces).
3. A region too short to identify on its own (top probability under
   `CONFIDENT`) takes, of the languages confidently heard around it, the one
   its own distribution ranks highest; its probability is that language's
   probability in its own distribution, so the number shown stays measured.

Every unit keeps the model's probability of the language it was given, and
each decoded segment carries the probability of the unit it overlaps most.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from reelscribe.speech import SAMPLE_RATE_HZ, Region

#: Whisper's input window: a detection sees at most this much audio.
WINDOW_S = 30.0
#: A window identified at least this surely is not split further (unless a
#: neighbour disagrees).
SURE = 0.8
#: A unit identified at least this surely keeps its own answer.
CONFIDENT = 0.5
#: Silence kept between the regions packed into one detection window.
_GAP_S = 0.2

#: Identify the language of 16 kHz audio: [(language, probability), ...], most
#: probable first (`transcriber.identify`).
Identify = Callable[[npt.NDArray[np.float32]], list[tuple[str, float]]]


@dataclass(frozen=True)
class Unit:
    """A stretch of speech with the language identified in it."""

    start_s: float
    end_s: float
    language: str
    probability: float


@dataclass(frozen=True)
class Run:
    """Consecutive units in one language: decoded together with the language fixed."""

    start_s: float
    end_s: float
    language: str
    units: tuple[Unit, ...]

    def probability_at(self, start_s: float, end_s: float) -> float:
        """The probability of the unit overlapping [start_s, end_s] most."""
        best, best_overlap = self.units[0].probability, -1.0
        for u in self.units:
            overlap = min(end_s, u.end_s) - max(start_s, u.start_s)
            if overlap > best_overlap:
                best, best_overlap = u.probability, overlap
        return best


def speech_spans(
    regions: Sequence[Region], start_s: float, end_s: float
) -> list[tuple[float, float]]:
    """The speech regions inside [start_s, end_s], clipped, long ones cut into windows."""
    spans: list[tuple[float, float]] = []
    for r in regions:
        s, e = max(r.start_s, start_s), min(r.end_s, end_s)
        if not r.is_speech or e <= s:
            continue
        while e - s > WINDOW_S:
            spans.append((s, s + WINDOW_S))
            s += WINDOW_S
        spans.append((s, e))
    return spans


def pack(spans: list[tuple[float, float]], gap_s: float = 0.2) -> list[list[tuple[float, float]]]:
    """Consecutive spans packed into groups that fit one `WINDOW_S` window
    with `gap_s` of silence between spans."""
    groups: list[list[tuple[float, float]]] = []
    total = 0.0
    for s, e in spans:
        if groups and total + (e - s) + gap_s <= WINDOW_S:
            groups[-1].append((s, e))
            total += (e - s) + gap_s
        else:
            groups.append([(s, e)])
            total = e - s
    return groups


def _audio_of(
    audio: npt.NDArray[np.float32], spans: Sequence[tuple[float, float]]
) -> npt.NDArray[np.float32]:
    gap = np.zeros(round(_GAP_S * SAMPLE_RATE_HZ), dtype=np.float32)
    parts: list[npt.NDArray[np.float32]] = []
    for s, e in spans:
        if parts:
            parts.append(gap)
        parts.append(np.asarray(audio[round(s * SAMPLE_RATE_HZ) : round(e * SAMPLE_RATE_HZ)]))
    return np.concatenate(parts).astype(np.float32, copy=False) if parts else gap


def identify_units(
    identify: Identify,
    audio: npt.NDArray[np.float32],
    regions: Sequence[Region],
    start_s: float,
    end_s: float,
) -> list[Unit]:
    """The speech in [start_s, end_s] of `audio` (original timeline) as identified units."""
    spans = speech_spans(regions, start_s, end_s)
    if not spans:
        return []
    groups = pack(spans, _GAP_S)
    answers = [identify(_audio_of(audio, g)) for g in groups]
    tops = [a[0] for a in answers]
    units: list[tuple[float, float, list[tuple[str, float]]]] = []
    for i, group in enumerate(groups):
        neighbours = {tops[j][0] for j in (i - 1, i + 1) if 0 <= j < len(groups)}
        mixed = tops[i][1] < SURE or bool(neighbours - {tops[i][0]})
        if mixed and len(group) > 1:
            units.extend((s, e, identify(_audio_of(audio, [(s, e)]))) for s, e in group)
        else:
            units.append((group[0][0], group[-1][1], answers[i]))
    return _settle(units)


def identify_spans(
    identify: Identify, audio: npt.NDArray[np.float32], spans: Sequence[tuple[float, float]]
) -> list[Unit]:
    """Each span identified on its own (the spans of a window that may hold a switch)."""
    return _settle([(s, e, identify(_audio_of(audio, [(s, e)]))) for s, e in spans])


def _settle(raw: list[tuple[float, float, list[tuple[str, float]]]]) -> list[Unit]:
    """Units with a language each; unsure ones take the likeliest language heard around them."""
    confident = [probs[0][1] >= CONFIDENT for _, _, probs in raw]
    units: list[Unit] = []
    for i, (s, e, probs) in enumerate(raw):
        language, probability = probs[0]
        if not confident[i]:
            around = {raw[j][2][0][0] for j in _nearest_confident(confident, i)}
            ranked = [(lang, p) for lang, p in probs if lang in around]
            if ranked:
                language, probability = ranked[0]
        units.append(Unit(s, e, language, float(probability)))
    return units


def _nearest_confident(confident: list[bool], i: int) -> list[int]:
    """The nearest confident unit on each side of unit `i`."""
    found = []
    for step in (-1, 1):
        j = i + step
        while 0 <= j < len(confident) and not confident[j]:
            j += step
        if 0 <= j < len(confident):
            found.append(j)
    return found


def runs(units: Sequence[Unit], start_s: float, end_s: float) -> list[Run]:
    """Consecutive same-language units joined; runs cover [start_s, end_s] between them.

    Run boundaries sit in the middle of the silence between two units, so a
    run decodes with a little of its silence and never cuts speech.
    """
    groups: list[list[Unit]] = []
    for u in units:
        if groups and groups[-1][-1].language == u.language:
            groups[-1].append(u)
        else:
            groups.append([u])
    result: list[Run] = []
    for k, g in enumerate(groups):
        left = start_s if k == 0 else (groups[k - 1][-1].end_s + g[0].start_s) / 2
        right = end_s if k == len(groups) - 1 else (g[-1].end_s + groups[k + 1][0].start_s) / 2
        result.append(Run(left, right, g[0].language, tuple(g)))
    return result


def text_compression_ratio(text: str) -> float:
    """How well a segment's own text compresses (Whisper's repetition measure)."""
    data = text.encode()
    return len(data) / len(zlib.compress(data)) if data else 0.0


#: An English-only model's segment whose words it was this unsure of on
#: average, or whose text repeats itself this much, may be another language.
SUSPECT_WORD_PROBABILITY = 0.7
#: A multilingual model's segment decoded in its window's language with words
#: this unsure on average is identified again on its own. Lower than for
#: English-only models: each check costs an encoder pass, and on espeak-ng
#: English about one segment in ten lies between 0.6 and 0.7, while speech
#: decoded in the wrong language mostly lies below 0.6 (bench.languages).
RECHECK_WORD_PROBABILITY = 0.6
SUSPECT_COMPRESSION = 2.4


def looks_foreign(
    text: str,
    word_probabilities: Sequence[float],
    threshold: float = SUSPECT_WORD_PROBABILITY,
) -> bool:
    """Whether a segment is worth checking for another language: its words
    were unsure on average (below `threshold`), or its text repeats itself."""
    if word_probabilities and float(np.mean(word_probabilities)) < threshold:
        return True
    return text_compression_ratio(text) > SUSPECT_COMPRESSION
