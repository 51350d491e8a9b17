"""Speaker turns of a recording, from its speech regions.

The speech regions (the VAD's, already computed for transcription) are cut
into windows of `WINDOW_S` every `HOP_S`. Each window is labelled either

* by channel, when the recording is stereo and its channels carry different
  people (most speech is much louder on one side than the other): the louder
  channel is the speaker; or
* by voice: a speaker embedding per window (`reelscribe.speakers.encoder`),
  clustered agglomeratively on cosine distance — into exactly the requested
  number of speakers, or, automatically, merging clusters closer than
  `DISTANCE_THRESHOLD` (at most `max_speakers`).

Labels are smoothed (a window that disagrees with both neighbours in the same
region takes theirs), each 0.1 s of speech takes the label of the window whose
centre is nearest, and runs of one label become turns. Speakers are numbered
by when they first speak. Pure computation: no database, no model loading
(the embedding function is passed in).

Limits: overlapping speech gets one speaker (the dominant window's); turns
shorter than about a window may be absorbed by their neighbours.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from reelscribe.speech import SAMPLE_RATE_HZ, Region

#: Length of one embedding window (the voice encoder's native partial, 160 frames).
WINDOW_S = 1.6
#: Step between windows.
HOP_S = 0.8
#: Regions shorter than this get no window of their own (too little voice to
#: tell); their speech takes the nearest turn's speaker.
MIN_WINDOW_S = 0.4
#: Time resolution of the turns.
FRAME_S = 0.1
#: Cosine distance (average linkage) under which clusters are one speaker.
#: Tuned on espeak-ng conversations (bench/speakers) and real-speech figures
#: (same speaker about 0.18 apart, different speakers about 0.34).
DISTANCE_THRESHOLD = 0.26
#: A cluster holding fewer windows than this share (and than
#: `MIN_CLUSTER_WINDOWS`, about 4 s of speech) is not a speaker: mostly windows
#: that straddle a change of speaker. It joins its nearest large cluster.
MIN_CLUSTER_SHARE = 0.05
MIN_CLUSTER_WINDOWS = 4
#: A window is lateralized when one channel is this much louder (dB).
CHANNEL_DB = 6.0
#: Channels carry different people when this share of speech windows is lateralized.
CHANNEL_SHARE = 0.8
#: Channel-energy frames per second (`reelscribe.media.ENERGY_FRAME`).
ENERGY_RATE_HZ = 100

#: Voice embeddings of windows of audio: one L2-normalized row per window.
Embed = Callable[[Sequence[npt.NDArray[np.float32]]], npt.NDArray[np.float32]]
#: Progress of the computation (0..1) and a message.
Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class Turn:
    """A stretch of speech by one speaker (0-based, numbered by first appearance)."""

    start_s: float
    end_s: float
    speaker: int


@dataclass(frozen=True)
class Diarization:
    """Who speaks when."""

    turns: tuple[Turn, ...]
    #: How speakers were told apart: "voices", "channels" or "none" (no speech).
    method: str

    @property
    def speaker_count(self) -> int:
        """How many speakers were found."""
        return len({t.speaker for t in self.turns})

    def speaking_s(self) -> list[float]:
        """Seconds of speech of each speaker, by speaker number."""
        out = [0.0] * self.speaker_count
        for t in self.turns:
            out[t.speaker] += t.end_s - t.start_s
        return out


@dataclass(frozen=True)
class _Window:
    start_s: float
    end_s: float
    region: int

    @property
    def centre_s(self) -> float:
        return (self.start_s + self.end_s) / 2


def windows(regions: Sequence[Region]) -> list[_Window]:
    """Embedding windows over the speech regions: `WINDOW_S` long every
    `HOP_S`, the last one ending at the region's end; a region shorter than a
    window is one window, and one shorter than `MIN_WINDOW_S` none."""
    out: list[_Window] = []
    for n, r in enumerate(regions):
        if not r.is_speech or r.duration_s < MIN_WINDOW_S:
            continue
        if r.duration_s <= WINDOW_S:
            out.append(_Window(r.start_s, r.end_s, n))
            continue
        start = r.start_s
        while start + WINDOW_S < r.end_s:
            out.append(_Window(start, start + WINDOW_S, n))
            start += HOP_S
        out.append(_Window(r.end_s - WINDOW_S, r.end_s, n))
    return out


def diarize(
    audio: npt.NDArray[np.float32],
    regions: Sequence[Region],
    embed: Embed,
    *,
    channel_energy: npt.NDArray[np.float32] | None = None,
    speaker_count: int = 0,
    max_speakers: int = 8,
    progress: Progress | None = None,
    batch: int = 64,
) -> Diarization:
    """The speaker turns of `audio` (mono float32 at 16 kHz, may be a memory
    map) within its speech `regions`.

    `speaker_count` > 0 asks for exactly that many speakers (fewer only when
    there are fewer windows); 0 detects up to `max_speakers`.
    `channel_energy` (frames of 10 ms by 2 channels) lets a stereo recording
    whose channels carry different people be split by channel.
    """
    speech = [r for r in regions if r.is_speech and r.end_s > r.start_s]
    if not speech:
        return Diarization((), "none")
    wins = windows(regions)
    if not wins:
        # Only fragments of speech: too little to tell voices apart.
        return _turns(regions, [], [], "voices")
    by_channel = None
    if channel_energy is not None:
        by_channel = channel_labels(wins, channel_energy)
        if by_channel is not None and speaker_count and len(set(by_channel)) != speaker_count:
            by_channel = None  # the channels do not hold the number of people asked for
        if by_channel is not None and len(set(by_channel)) > max_speakers:
            by_channel = None
    if by_channel is not None:
        return _turns(regions, wins, _smoothed(wins, by_channel), "channels")
    vectors: list[npt.NDArray[np.float32]] = []
    for first in range(0, len(wins), batch):
        part = wins[first : first + batch]
        clips = [
            np.asarray(
                audio[int(w.start_s * SAMPLE_RATE_HZ) : int(w.end_s * SAMPLE_RATE_HZ)],
                dtype=np.float32,
            )
            for w in part
        ]
        vectors.append(embed(clips))
        if progress is not None:
            done = first + len(part)
            progress(0.9 * done / len(wins), f"{done} of {len(wins)} voice windows embedded")
    labels = cluster(
        np.concatenate(vectors), speaker_count=speaker_count, max_speakers=max_speakers
    )
    return _turns(regions, wins, _smoothed(wins, labels), "voices")


def channel_labels(wins: Sequence[_Window], energy: npt.NDArray[np.float32]) -> list[int] | None:
    """Each window's louder channel (0 left, 1 right), when the channels carry
    different people; None when they do not (a mono or ordinary stereo mix)."""
    if energy.ndim != 2 or energy.shape[1] != 2 or not len(energy):
        return None
    labels: list[int] = []
    lateral = 0
    for w in wins:
        a = int(w.start_s * ENERGY_RATE_HZ)
        b = max(a + 1, int(w.end_s * ENERGY_RATE_HZ))
        left, right = (float(x) + 1e-12 for x in energy[a:b].sum(axis=0))
        db = 10 * np.log10(left / right)
        lateral += abs(db) >= CHANNEL_DB
        labels.append(0 if db >= 0 else 1)
    if lateral < CHANNEL_SHARE * len(wins):
        return None
    return labels


def cluster(
    vectors: npt.NDArray[np.float32], *, speaker_count: int = 0, max_speakers: int = 8
) -> list[int]:
    """Speaker labels of L2-normalized embeddings.

    Clusters closer than `DISTANCE_THRESHOLD` are merged; clusters too small
    to be a speaker (mostly windows that straddle a change of speaker) join
    their nearest large cluster; then the clusters' centres are merged until
    there are `speaker_count` of them (when given) or at most `max_speakers`.
    A given count the clusters fall short of is forced on all the windows.
    """
    from sklearn.cluster import AgglomerativeClustering

    n = len(vectors)
    if n == 1 or speaker_count == 1 or max_speakers == 1:
        return [0] * n
    model = AgglomerativeClustering(
        n_clusters=None, distance_threshold=DISTANCE_THRESHOLD, metric="cosine", linkage="average"
    )
    labels = _absorb_small(vectors, [int(x) for x in model.fit_predict(vectors)])
    found = len(set(labels))
    if speaker_count and found < speaker_count:
        forced = AgglomerativeClustering(
            n_clusters=min(speaker_count, n), metric="cosine", linkage="average"
        )
        return [int(x) for x in forced.fit_predict(vectors)]
    target = speaker_count or max_speakers
    if found > target:
        labels = _merge_centres(vectors, labels, target)
    return labels


def _merge_centres(vectors: npt.NDArray[np.float32], labels: list[int], target: int) -> list[int]:
    """Merge clusters (by their centres, average linkage) down to `target`."""
    from sklearn.cluster import AgglomerativeClustering

    ids = sorted(set(labels))
    arr = np.asarray(labels)
    centres = np.stack([vectors[arr == c].mean(axis=0) for c in ids])
    merged = AgglomerativeClustering(
        n_clusters=target, metric="cosine", linkage="average"
    ).fit_predict(centres)
    to = {c: int(m) for c, m in zip(ids, merged, strict=True)}
    return [to[c] for c in labels]


def _absorb_small(vectors: npt.NDArray[np.float32], labels: list[int]) -> list[int]:
    """Clusters too small to be a speaker join the nearest large one (all stay
    when none is large)."""
    counts = {c: labels.count(c) for c in set(labels)}
    floor = max(MIN_CLUSTER_WINDOWS, MIN_CLUSTER_SHARE * len(labels))
    large = [c for c, k in counts.items() if k >= floor]
    if not large or len(large) == len(counts):
        return labels
    arr = np.asarray(labels)
    centres = {c: vectors[arr == c].mean(axis=0) for c in large}
    out = []
    for v, c in zip(vectors, labels, strict=True):
        if c not in centres:
            c = max(centres, key=lambda k: float(np.dot(v, centres[k])))
        out.append(c)
    return out


def _smoothed(wins: Sequence[_Window], labels: Sequence[int]) -> list[int]:
    """A window that disagrees with both neighbours in its region (which agree)
    takes their label: a single window is too short to be a turn."""
    out = list(labels)
    for i in range(1, len(wins) - 1):
        same_region = wins[i - 1].region == wins[i].region == wins[i + 1].region
        if same_region and labels[i - 1] == labels[i + 1] != labels[i]:
            out[i] = labels[i - 1]
    return out


def _nearest(
    centres: npt.NDArray[np.float64], times: npt.NDArray[np.float64]
) -> npt.NDArray[np.intp]:
    """Index of the centre nearest each time (`centres` ascending): a binary
    search, so hours of audio cost no more than their windows."""
    right = np.clip(np.searchsorted(centres, times), 0, len(centres) - 1)
    left = np.clip(right - 1, 0, len(centres) - 1)
    closer_left = np.abs(times - centres[left]) <= np.abs(centres[right] - times)
    return np.where(closer_left, left, right)


def _turns(
    regions: Sequence[Region], wins: Sequence[_Window], labels: Sequence[int], method: str
) -> Diarization:
    """Turns from window labels: each `FRAME_S` of speech takes the label of
    the window whose centre is nearest; runs of a label in a region are turns."""
    centres = np.asarray([w.centre_s for w in wins])
    raw: list[Turn] = []
    for r in regions:
        if not r.is_speech or r.end_s <= r.start_s:
            continue
        if not len(centres):
            raw.append(Turn(r.start_s, r.end_s, 0))
            continue
        edges = np.arange(r.start_s, r.end_s, FRAME_S)
        mids = np.minimum(edges + FRAME_S / 2, r.end_s)
        nearest = _nearest(centres, mids)
        frame_labels = [labels[i] for i in nearest.tolist()]
        start = r.start_s
        for k in range(1, len(frame_labels) + 1):
            if k == len(frame_labels) or frame_labels[k] != frame_labels[k - 1]:
                end = r.end_s if k == len(frame_labels) else float(edges[k])
                raw.append(Turn(start, end, frame_labels[k - 1]))
                start = end
    # Speakers numbered by first appearance.
    order: dict[int, int] = {}
    for t in raw:
        order.setdefault(t.speaker, len(order))
    return Diarization(tuple(Turn(t.start_s, t.end_s, order[t.speaker]) for t in raw), method)
