"""The offline provider: extractive analysis from sentence embeddings.

Nothing here generates text. The transcript is split into sentences across
segment boundaries (`reelscribe.insights.sentences`: Whisper's segments are
not sentences). Summaries are its most central whole sentences (degree
centrality over cosine similarity, picked with maximal marginal relevance so
they do not repeat each other) in time order; every format is a prefix of one
ranking, so the detailed summary contains the short one and no sentence
appears twice. Chapters start where the topic shifts (the similarity of the
segments before and after a boundary drops, as in TextTiling), and each is
titled by its best key phrase (`reelscribe.insights.keyphrases`). Answers are
the retrieved passages, or "not answered" when none is close enough in
meaning to the question.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from reelscribe.embeddings import Embedder
from reelscribe.insights import keyphrases, sentences
from reelscribe.insights.base import (
    Analysis,
    Answer,
    CannotTranslate,
    ChapterData,
    Importance,
    Seg,
    Summary,
    Translation,
)
from reelscribe.insights.sentences import Sentence

#: Sentences per summary format (detailed grows with the transcript).
SHORT_SENTENCES = 3
BULLETS = 5
DETAILED_FRACTION = 0.25
DETAILED_MAX_SENTENCES = 20
#: One chapter per this much audio, at least one and at most MAX_CHAPTERS.
CHAPTER_TARGET_S = 120.0
MAX_CHAPTERS = 12
#: A chapter is never shorter than this many segments.
MIN_CHAPTER_SEGMENTS = 3
#: Segments on each side of a candidate boundary compared for a topic shift.
SHIFT_WINDOW = 3
#: Trade-off between relevance and novelty when picking summary sentences.
MMR_LAMBDA = 0.7
#: Sentences this similar (cosine) to one already picked say the same thing.
DUPLICATE_SIMILARITY = 0.92
#: Sentences shorter than this (in words) are summarised only when nothing else is left.
MIN_SUMMARY_WORDS = 4
#: Key phrases of a chapter considered for its title.
TITLE_CANDIDATES = 12
#: How much a title candidate's TF-IDF weight counts beside its closeness in meaning.
TITLE_WEIGHT_SHARE = 0.5
#: Passages the local answer quotes.
ANSWER_PASSAGES = 3
#: Cosine similarity (all-MiniLM-L6-v2) the best passage must reach for the
#: question to count as answered; measured in docs/analysis.md.
ANSWER_MIN_SIMILARITY = 0.3
#: What the local provider answers when the library does not answer the question.
NO_ANSWER = "The recordings do not answer this question."


class LocalProvider:
    """Extractive analysis on the CPU with the search embedder; cannot translate."""

    name = "local"

    def __init__(
        self, embedder: Embedder, answer_min_similarity: float = ANSWER_MIN_SIMILARITY
    ) -> None:
        self._embedder = embedder
        self._answer_min_similarity = answer_min_similarity

    def analyze(self, segments: Sequence[Seg]) -> Analysis:
        segs = [s for s in segments if s.text.strip()]
        if not segs:
            return Analysis(
                summaries=tuple(Summary(f, "") for f in ("short", "bullets", "detailed")),
                chapters=(),
                importance=(),
            )
        sents = sentences.split(segs)
        sent_vectors = self._embedder.embed([s.text for s in sents])
        vectors = _segment_vectors(len(segs), sents, sent_vectors)
        bounds = _chapter_bounds(segs, vectors)
        chapters, topics = _titles_and_topics(
            segs, bounds, vectors, sents, sent_vectors, self._embedder
        )
        importance = _importance(segs, _centrality(vectors), topics)
        detailed_n = min(
            DETAILED_MAX_SENTENCES, max(BULLETS, round(len(sents) * DETAILED_FRACTION))
        )
        ranking = _rank(sents, sent_vectors, _centrality(sent_vectors), detailed_n)
        short = sorted(ranking[:SHORT_SENTENCES])
        bullets = sorted(ranking[:BULLETS])
        detailed = sorted(ranking)
        return Analysis(
            summaries=(
                Summary("short", " ".join(sents[i].text for i in short)),
                Summary(
                    "bullets",
                    "\n".join(f"- {sents[i].text}" for i in bullets),
                    tuple(sents[i].text for i in bullets),
                ),
                Summary("detailed", _paragraphs(sents, detailed, chapters)),
            ),
            chapters=tuple(chapters),
            importance=tuple(importance),
            topics=tuple(topics),
        )

    def answer(self, question: str, passages: Sequence[Seg]) -> Answer:
        """Up to `ANSWER_PASSAGES` retrieved passages (in retrieval order) close
        enough in meaning to the question; `NO_ANSWER` and no citation when none is."""
        if not passages:
            return Answer(NO_ANSWER, ())
        similarity = self.similarities(question, [p.text for p in passages])
        used = [i for i, s in enumerate(similarity) if s >= self._answer_min_similarity]
        used = used[:ANSWER_PASSAGES]
        if not used:
            return Answer(NO_ANSWER, ())
        return Answer(" … ".join(passages[i].text.strip() for i in used), tuple(used))

    def similarities(self, question: str, texts: Sequence[str]) -> list[float]:
        """Cosine similarity of `question` to each text (the search embedder's scale)."""
        vectors = self._embedder.embed([question, *texts])
        return [float(v @ vectors[0]) for v in vectors[1:]]

    def translate(self, segments: Sequence[Seg], language: str) -> Translation:
        raise CannotTranslate(self.name)


def _segment_vectors(
    count: int, sents: Sequence[Sentence], sent_vectors: npt.NDArray[np.float32]
) -> npt.NDArray[np.float32]:
    """Each segment's vector: the normalised mean of the sentences it holds
    (one embedding pass serves sentences and segments)."""
    sums = np.zeros((count, sent_vectors.shape[1]), dtype=np.float32)
    for sent, vector in zip(sents, sent_vectors, strict=True):
        for k in sent.segments:
            sums[k] += vector
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return np.asarray(sums / np.where(norms > 0, norms, 1.0), dtype=np.float32)


def _centrality(vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """Mean cosine similarity of each segment to all others, scaled to 0..1."""
    if len(vectors) == 1:
        return np.ones(1)
    sim = vectors @ vectors.T
    degree = (sim.sum(axis=1) - 1.0) / (len(vectors) - 1)
    low, high = float(degree.min()), float(degree.max())
    if high - low < 1e-9:
        return np.ones(len(vectors))
    return np.asarray((degree - low) / (high - low), dtype=np.float64)


def _rank(
    sents: Sequence[Sentence],
    vectors: npt.NDArray[np.float32],
    centrality: npt.NDArray[np.float64],
    n: int,
) -> list[int]:
    """Up to `n` central but mutually different sentences, best first (MMR).

    A sentence whose text was already picked, or that is nearly the same in
    meaning (`DUPLICATE_SIMILARITY`), is never picked again; fragments
    shorter than `MIN_SUMMARY_WORDS` only when nothing longer is left.
    """
    chosen: list[int] = []
    seen_texts: set[str] = set()
    longer = {i for i, s in enumerate(sents) if len(s.text.split()) >= MIN_SUMMARY_WORDS}
    for pool in (longer, set(range(len(sents))) - longer):
        candidates = set(pool)
        while candidates and len(chosen) < n:

            def redundancy(i: int) -> float:
                return max((float(vectors[i] @ vectors[j]) for j in chosen), default=0.0)

            def gain(i: int) -> float:
                return MMR_LAMBDA * float(centrality[i]) - (1 - MMR_LAMBDA) * redundancy(i)

            best = max(sorted(candidates), key=gain)
            candidates.remove(best)
            key = " ".join(sents[best].text.lower().split())
            if key in seen_texts or redundancy(best) >= DUPLICATE_SIMILARITY:
                continue
            seen_texts.add(key)
            chosen.append(best)
    return chosen


def _chapter_bounds(segs: Sequence[Seg], vectors: npt.NDArray[np.float32]) -> list[int]:
    """Indexes where chapters start (always including 0), at the deepest topic shifts."""
    duration = segs[-1].end_s - segs[0].start_s
    wanted = int(min(MAX_CHAPTERS, max(1, round(duration / CHAPTER_TARGET_S))))
    wanted = min(wanted, max(1, len(segs) // MIN_CHAPTER_SEGMENTS))
    if wanted == 1:
        return [0]
    shifts: list[tuple[float, int]] = []
    for i in range(MIN_CHAPTER_SEGMENTS, len(segs) - MIN_CHAPTER_SEGMENTS + 1):
        before = vectors[max(0, i - SHIFT_WINDOW) : i].mean(axis=0)
        after = vectors[i : i + SHIFT_WINDOW].mean(axis=0)
        cos = float(before @ after) / (float(np.linalg.norm(before) * np.linalg.norm(after)) or 1.0)
        shifts.append((cos, i))
    bounds = [0]
    for _, i in sorted(shifts):  # least similar first
        if all(abs(i - b) >= MIN_CHAPTER_SEGMENTS for b in bounds) and len(segs) - i >= (
            MIN_CHAPTER_SEGMENTS
        ):
            bounds.append(i)
            if len(bounds) == wanted:
                break
    return sorted(bounds)


def _titles_and_topics(
    segs: Sequence[Seg],
    bounds: list[int],
    vectors: npt.NDArray[np.float32],
    sents: Sequence[Sentence],
    sent_vectors: npt.NDArray[np.float32],
    embedder: Embedder,
) -> tuple[list[ChapterData], list[str]]:
    """Chapters titled by their best key phrase; the transcript's topics.

    A chapter's candidates are its most distinctive phrases (TF-IDF, chapters
    as documents, see `keyphrases`); the title takes the one closest in
    meaning to what the chapter says as a whole (its mean embedding), so a
    phrase that is merely frequent or rare does not name it. A phrase with the
    stems of an earlier chapter's title is skipped; a chapter with no phrase
    left is titled by its most central sentence, shortened.
    """
    spans = list(zip(bounds, [*bounds[1:], len(segs)], strict=True))
    docs = [" ".join(s.text for s in segs[a:b]) for a, b in spans]
    weights, terms = keyphrases.weigh(docs)
    used: list[frozenset[str]] = []
    chapters = []
    for row, doc, (a, b) in zip(weights, docs, spans, strict=True):
        centroid = vectors[a:b].mean(axis=0)
        column = {t: k for k, t in enumerate(terms)}
        fresh = [
            t
            for t in keyphrases.top(row, terms, TITLE_CANDIDATES)
            if keyphrases.stems(t) not in used
        ]
        best = _closest(fresh, [float(row[column[t]]) for t in fresh], centroid, embedder)
        if best:
            title = keyphrases.as_title(best, doc)
            used.append(keyphrases.stems(best))
        else:
            title = _central_sentence(sents, sent_vectors, centroid, set(range(a, b)))
        # Chapters tile the recording: each ends where the next begins.
        end_s = segs[b].start_s if b < len(segs) else segs[-1].end_s
        chapters.append(ChapterData(title, segs[a].start_s, end_s))
    topics = keyphrases.top(weights.sum(axis=0), terms, 5) if terms else []
    return chapters, topics


def _closest(
    candidates: list[str],
    weights: Sequence[float],
    centroid: npt.NDArray[np.float32],
    embedder: Embedder,
) -> str | None:
    """The candidate best by distinctiveness (its weight relative to the
    heaviest) plus closeness in meaning to `centroid`; None if there is none."""
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    closeness = embedder.embed(candidates) @ centroid
    heaviest = max(weights) or 1.0
    scores = [
        w / heaviest * TITLE_WEIGHT_SHARE + float(c)
        for w, c in zip(weights, closeness, strict=True)
    ]
    return candidates[int(np.argmax(scores))]


def _central_sentence(
    sents: Sequence[Sentence],
    sent_vectors: npt.NDArray[np.float32],
    centroid: npt.NDArray[np.float32],
    positions: set[int],
) -> str:
    """The chapter's sentence closest to its centroid, shortened to a title."""
    inside = [i for i, s in enumerate(sents) if s.segments[0] in positions]
    if not inside:
        return ""
    best = max(inside, key=lambda i: float(sent_vectors[i] @ centroid))
    return keyphrases.shorten(sents[best].text)


def _importance(
    segs: Sequence[Seg], centrality: npt.NDArray[np.float64], topics: list[str]
) -> list[Importance]:
    """Centrality, damped for fragments too short to stand alone as a highlight."""
    out = []
    for i, seg in enumerate(segs):
        words = len(seg.text.split())
        score = float(centrality[i]) * min(1.0, words / 8)
        mentioned = [t for t in topics if t in seg.text.lower()]
        reason = "close to the recording's main theme"
        if mentioned:
            reason += "; mentions " + ", ".join(mentioned[:3])
        out.append(Importance(seg.index, round(score, 4), reason))
    return out


def _paragraphs(
    sents: Sequence[Sentence], picked: list[int], chapters: Sequence[ChapterData]
) -> str:
    """Picked sentences (in time order) grouped into one paragraph per chapter."""
    paragraphs: list[list[str]] = [[] for _ in chapters]
    for i in picked:
        starts = [k for k, c in enumerate(chapters) if c.start_s <= sents[i].start_s]
        paragraphs[starts[-1] if starts else 0].append(sents[i].text)
    return "\n\n".join(" ".join(p) for p in paragraphs if p)
