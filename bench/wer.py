"""Word error rate: word-level Levenshtein distance over the reference's length.

Both texts are lower-cased and stripped of punctuation first (`normalize`), so
"Earth." and "earth" match; digits and letters are kept as they are. No
number or spelling normalization: what is measured is what a reader sees.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_NOT_WORD = re.compile(r"[^\w\s']|_")


def normalize(text: str) -> list[str]:
    """Lower-cased words without punctuation (apostrophes inside words kept)."""
    words = _NOT_WORD.sub(" ", text.lower()).split()
    return [w.strip("'") for w in words if w.strip("'")]


def edit_distance(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    """Substitutions + deletions + insertions turning `reference` into `hypothesis`."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        current = [i]
        for j, hyp in enumerate(hypothesis, 1):
            current.append(
                min(
                    previous[j] + 1,  # deletion
                    current[j - 1] + 1,  # insertion
                    previous[j - 1] + (ref != hyp),  # substitution or match
                )
            )
        previous = current
    return previous[-1]


def errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(word errors, reference words) of `hypothesis` against `reference`."""
    ref, hyp = normalize(reference), normalize(hypothesis)
    return edit_distance(ref, hyp), len(ref)


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate of `hypothesis` against a non-empty `reference`."""
    edits, words = errors(reference, hypothesis)
    if not words:
        raise ValueError("the reference has no words")
    return edits / words
