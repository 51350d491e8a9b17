"""The offline provider: extractive analysis from sentence embeddings.

Nothing here generates text. Summaries are the transcript's own most central
sentences (degree centrality over cosine similarity, picked with maximal
marginal relevance so they do not repeat each other), chapters start where
the topic shifts (the similarity of the segments before and after a boundary
drops, as in TextTiling), and chapter titles are each chapter's most
distinctive key phrases (TF-IDF with chapters as documents).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

from reelscribe.embeddings import Embedder
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
#: Key phrases of a chapter considered for its title.
TITLE_CANDIDATES = 12
#: Passages the local answer quotes.
ANSWER_PASSAGES = 3


class LocalProvider:
    """Extractive analysis on the CPU with the search embedder; cannot translate."""

    name = "local"

    def __init__(self, embedder: Embedder) -> None:
        self._embedder = embedder

    def analyze(self, segments: Sequence[Seg]) -> Analysis:
        segs = [s for s in segments if s.text.strip()]
        if not segs:
            return Analysis(
                summaries=tuple(Summary(f, "") for f in ("short", "bullets", "detailed")),
                chapters=(),
                importance=(),
            )
        vectors = self._embedder.embed([s.text for s in segs])
        centrality = _centrality(vectors)
        bounds = _chapter_bounds(segs, vectors)
        chapters, topics = _titles_and_topics(segs, bounds, vectors, self._embedder)
        importance = _importance(segs, centrality, topics)
        short = _pick(vectors, centrality, SHORT_SENTENCES)
        bullets = _pick(vectors, centrality, BULLETS)
        detailed_n = min(DETAILED_MAX_SENTENCES, max(BULLETS, round(len(segs) * DETAILED_FRACTION)))
        detailed = _pick(vectors, centrality, detailed_n)
        return Analysis(
            summaries=(
                Summary("short", " ".join(segs[i].text.strip() for i in short)),
                Summary(
                    "bullets",
                    "\n".join(f"- {segs[i].text.strip()}" for i in bullets),
                    tuple(segs[i].text.strip() for i in bullets),
                ),
                Summary("detailed", _paragraphs(segs, detailed, bounds)),
            ),
            chapters=tuple(chapters),
            importance=tuple(importance),
            topics=tuple(topics),
        )

    def answer(self, question: str, passages: Sequence[Seg]) -> Answer:
        # Extractive: the best retrieved passages, in the order retrieval ranked them.
        used = list(range(min(ANSWER_PASSAGES, len(passages))))
        if not used:
            return Answer("No passage in the library answers this question.", ())
        return Answer(" … ".join(passages[i].text.strip() for i in used), tuple(used))

    def translate(self, segments: Sequence[Seg], language: str) -> Translation:
        raise CannotTranslate(self.name)


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


def _pick(
    vectors: npt.NDArray[np.float32], centrality: npt.NDArray[np.float64], n: int
) -> list[int]:
    """`n` central but mutually different segments (MMR), returned in time order."""
    chosen: list[int] = []
    candidates = set(range(len(vectors)))
    while candidates and len(chosen) < n:

        def gain(i: int) -> float:
            redundancy = max((float(vectors[i] @ vectors[j]) for j in chosen), default=0.0)
            return MMR_LAMBDA * float(centrality[i]) - (1 - MMR_LAMBDA) * redundancy

        best = max(sorted(candidates), key=gain)
        chosen.append(best)
        candidates.remove(best)
    return sorted(chosen)


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


_WORD = re.compile(r"(?u)\b[^\W\d_][\w'-]+\b")


def _titles_and_topics(
    segs: Sequence[Seg],
    bounds: list[int],
    vectors: npt.NDArray[np.float32],
    embedder: Embedder,
) -> tuple[list[ChapterData], list[str]]:
    """Chapters titled by their key phrases; the transcript's topics.

    A chapter's candidates are its most distinctive terms (TF-IDF, chapters as
    documents); the title takes those closest in meaning to what the chapter
    says as a whole (its mean embedding), so a term that is merely frequent or
    rare does not name it.
    """
    spans = list(zip(bounds, [*bounds[1:], len(segs)], strict=True))
    docs = [" ".join(s.text for s in segs[a:b]) for a, b in spans]
    titles: list[str] = []
    topics: list[str] = []
    try:
        tfidf = TfidfVectorizer(
            stop_words=list(ENGLISH_STOP_WORDS), ngram_range=(1, 2), token_pattern=_WORD.pattern
        )
        matrix = tfidf.fit_transform(docs).toarray()
        terms = tfidf.get_feature_names_out()
    except ValueError:  # nothing but stop words (or no words at all, e.g. CJK only)
        matrix, terms = np.zeros((len(docs), 0)), np.array([])
    for row, (a, b) in zip(matrix, spans, strict=True):
        candidates = _top_phrases(row, terms, TITLE_CANDIDATES)
        phrases = _closest(candidates, vectors[a:b].mean(axis=0), embedder, 2)
        titles.append(" and ".join(phrases).capitalize() if phrases else _first_words(segs[a]))
    if len(terms):
        topics = _top_phrases(matrix.sum(axis=0), terms, 5)
    # Chapters tile the recording: each ends where the next begins.
    chapters = [
        ChapterData(title, segs[a].start_s, segs[b].start_s if b < len(segs) else segs[-1].end_s)
        for title, (a, b) in zip(titles, spans, strict=True)
    ]
    return chapters, topics


def _top_phrases(
    weights: npt.NDArray[np.float64], terms: npt.NDArray[np.str_], n: int
) -> list[str]:
    """The `n` heaviest terms, skipping words already inside a chosen phrase."""
    out: list[str] = []
    for k in np.argsort(-weights, kind="stable"):
        if weights[k] <= 0 or len(out) == n:
            break
        term = str(terms[k])
        if any(term in chosen or chosen in term for chosen in out):
            continue
        out.append(term)
    return out


def _closest(
    candidates: list[str], centroid: npt.NDArray[np.float32], embedder: Embedder, n: int
) -> list[str]:
    """The `n` candidates most similar to `centroid`, in that order."""
    if len(candidates) <= n:
        return candidates
    scores = embedder.embed(candidates) @ centroid
    return [candidates[k] for k in np.argsort(-scores, kind="stable")[:n]]


def _first_words(seg: Seg, n: int = 6) -> str:
    words = seg.text.split()
    return " ".join(words[:n]) + ("…" if len(words) > n else "")


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


def _paragraphs(segs: Sequence[Seg], picked: list[int], bounds: list[int]) -> str:
    """Picked sentences grouped into one paragraph per chapter."""
    paragraphs: list[list[str]] = [[] for _ in bounds]
    for i in picked:
        chapter = max(k for k, b in enumerate(bounds) if b <= i)
        paragraphs[chapter].append(segs[i].text.strip())
    return "\n\n".join(" ".join(p) for p in paragraphs if p)
