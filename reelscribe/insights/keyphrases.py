"""Key phrases of a transcript's chapters, and chapter titles made of them.

Candidates are the word sequences between stop words and punctuation (as in
RAKE), one to three words long, so a phrase never spans "and" or a comma the
way "copies and copy" did. Each chapter is a document for TF-IDF; a phrase of
several words gets a bonus (a title names a thing, "carbon dioxide", rather
than a word). Phrases whose words share a stem ("copies copy") are no
candidates, and two phrases with the same stems count as one, so "copies" and
"copy" never pair and two chapters are not titled by the same word in two
forms. No part-of-speech tagger is available offline; spoken filler and
common verbs are stop words instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt
from sklearn.feature_extraction.text import (
    ENGLISH_STOP_WORDS,
    CountVectorizer,
    TfidfTransformer,
)

#: Spoken filler and verbs too common to name anything (besides sklearn's list).
_SPOKEN_TEXT = """
    um uh er ah oh okay ok yeah yes hey hello welcome thank thanks today just really actually
    basically going gonna wanna got get gets getting know like lot lots thing things stuff kind
    sort right well mean means say says said let lets want wants make makes made use used uses
    using look looks need needs way ways good great little big new called does did doing
    let's i'm it's that's there's we're you're they're don't can't won't isn't
"""
_SPOKEN = frozenset(_SPOKEN_TEXT.split())
STOP_WORDS = frozenset(ENGLISH_STOP_WORDS) | _SPOKEN
#: Longest candidate phrase, in words.
MAX_PHRASE_WORDS = 3
#: Weight bonus per extra word of a phrase.
MULTIWORD_BONUS = 0.5

_CLAUSE = re.compile(r"[,.;:!?…()\[\]\"“”。\uff01\uff1f\uff0c、\uff1b\uff1a]+")
_TOKEN = re.compile(r"(?u)\b[^\W\d_][\w'\u2019-]*[^\W_]\b")


def stem(word: str) -> str:
    """A crude English stem, enough to see that "copies", "copied" and "copy" agree."""
    w = word.lower().replace("\u2019", "'").removesuffix("'s")
    for suffix, replacement in (("ies", "y"), ("ied", "y"), ("sses", "ss")):
        if w.endswith(suffix) and len(w) > len(suffix) + 1:
            return w[: -len(suffix)] + replacement
    if w.endswith("es") and w[:-2].endswith(("ch", "sh", "x", "z", "ss")):
        return w[:-2]
    if w.endswith("s") and not w.endswith(("ss", "us", "is")) and len(w) > 3:
        return w[:-1].removesuffix("e")
    for suffix in ("ing", "ed"):
        if w.endswith(suffix) and len(w) >= len(suffix) + 3:
            return w[: -len(suffix)].removesuffix("e")
    return w.removesuffix("e") if len(w) > 3 else w


def stems(phrase: str) -> frozenset[str]:
    """The stems of a phrase's words."""
    return frozenset(stem(w) for w in phrase.split())


def candidates(text: str) -> list[str]:
    """Every candidate phrase of `text` (lower case, with repeats, in order)."""
    out: list[str] = []
    for clause in _CLAUSE.split(text.lower()):
        run: list[str] = []
        for token in [*_TOKEN.findall(clause), ""]:
            if token and token not in STOP_WORDS and len(token) > 2:
                run.append(token)
                continue
            out.extend(_ngrams(run))
            run = []
    return out


def _ngrams(run: Sequence[str]) -> Iterable[str]:
    for n in range(1, MAX_PHRASE_WORDS + 1):
        for i in range(len(run) - n + 1):
            words = run[i : i + n]
            if len({stem(w) for w in words}) == n:  # "copies copy" names nothing
                yield " ".join(words)


def weigh(docs: Sequence[str]) -> tuple[npt.NDArray[np.float64], list[str]]:
    """TF-IDF weights of every candidate phrase (rows: docs) and the phrases
    (columns). A phrase of several words said at least twice in a document
    gets `MULTIWORD_BONUS` per extra word there; said once, it is more likely
    a stretch of a clause ("exercise strengthens") than the name of a thing,
    and gets none."""
    try:
        counter = CountVectorizer(analyzer=candidates)
        counts = counter.fit_transform(docs).toarray()
    except ValueError:  # no candidate at all (only stop words, or CJK)
        return np.zeros((len(docs), 0)), []
    matrix = TfidfTransformer().fit_transform(counts).toarray()
    terms = [str(t) for t in counter.get_feature_names_out()]
    extra_words = np.array([len(t.split()) - 1 for t in terms])
    bonus = 1.0 + MULTIWORD_BONUS * extra_words * (counts >= 2)
    return np.asarray(matrix * bonus, dtype=np.float64), terms


def top(weights: npt.NDArray[np.float64], terms: Sequence[str], n: int) -> list[str]:
    """The `n` heaviest phrases, none sharing a stem with a heavier one."""
    out: list[str] = []
    seen: set[str] = set()
    for k in np.argsort(-weights, kind="stable"):
        if weights[k] <= 0 or len(out) == n:
            break
        key = stems(terms[k])
        if key & seen:
            continue
        out.append(terms[k])
        seen |= key
    return out


def as_title(phrase: str, source: str) -> str:
    """`phrase` as written in `source` (keeping "DNA" or "Jupiter"), each word capitalised."""
    pattern = r"\W+".join(re.escape(w) for w in phrase.split())
    found = re.search(rf"(?<!\w){pattern}(?!\w)", source, re.IGNORECASE)
    words = (found.group(0) if found else phrase).split()
    return " ".join(w[:1].upper() + w[1:] for w in words)


def shorten(sentence: str, max_chars: int = 48) -> str:
    """A sentence cut at a word boundary to at most `max_chars`, without its final stop."""
    text = sentence.strip().rstrip(".!?。\uff01\uff1f")
    if len(text) <= max_chars:
        return text[:1].upper() + text[1:]
    cut = text[: max_chars - 1]
    if " " in cut:
        cut = cut[: cut.rindex(" ")]
    cut = cut.rstrip(" ,;:-")
    return cut[:1].upper() + cut[1:] + "…"
