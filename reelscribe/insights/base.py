"""The analysis provider family: what every provider takes and returns.

A provider reads a transcript (segments with times) and writes summaries,
chapters, per-segment importance, answers and translations. `local` runs
offline on the CPU; `gemini` calls Google's API. Both return the same
frozen types so the stages and the RPCs never know which one ran.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

#: Summary styles, as stored and as named in cache keys.
SUMMARY_FORMATS = ("short", "bullets", "detailed")


@dataclass(frozen=True)
class Seg:
    """One transcript segment as providers see it."""

    index: int
    start_s: float
    end_s: float
    text: str
    #: The segment's language (BCP-47; "" when unknown).
    language: str = ""


@dataclass(frozen=True)
class Usage:
    """Tokens a provider call consumed (zero for local providers)."""

    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total(self) -> int:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens
        )


@dataclass(frozen=True)
class Summary:
    """A summary in one format; `bullets` is filled for the bullets format."""

    format: str
    text: str
    bullets: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChapterData:
    """A titled, contiguous stretch of the recording."""

    title: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Importance:
    """How much a segment matters, 0..1, and why."""

    index: int
    score: float
    reason: str


@dataclass(frozen=True)
class Analysis:
    """Everything the analysis stage stores for one transcript."""

    summaries: tuple[Summary, ...]
    chapters: tuple[ChapterData, ...]
    importance: tuple[Importance, ...]
    topics: tuple[str, ...] = ()
    usage: Usage = field(default_factory=Usage)


@dataclass(frozen=True)
class Answer:
    """An answer and the indexes (into the given passages) it relied on."""

    text: str
    cited: tuple[int, ...]
    usage: Usage = field(default_factory=Usage)


@dataclass(frozen=True)
class Translation:
    """Segment texts in the target language, one per input segment, same order."""

    language: str
    texts: tuple[str, ...]
    usage: Usage = field(default_factory=Usage)


class ProviderError(Exception):
    """The provider failed or answered something unusable; `reason` is a stable code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class CannotTranslate(ProviderError):
    """The provider has no way to translate."""

    def __init__(self, provider: str) -> None:
        super().__init__(
            "TRANSLATION_UNAVAILABLE",
            f"the {provider} provider cannot translate; set GEMINI_API_KEY to enable translation",
        )


class Provider(Protocol):
    """An analysis provider. Calls are blocking (workers run them in threads)."""

    #: Short stable name stored with every result, e.g. "local" or "gemini".
    name: str

    def analyze(self, segments: Sequence[Seg]) -> Analysis:
        """Summaries in every format, chapters and importance of every segment.

        An empty transcript gives empty summaries and no chapters, not an error.
        """

    def answer(self, question: str, passages: Sequence[Seg]) -> Answer:
        """Answer `question` from `passages` (already retrieved, best first)."""

    def translate(self, segments: Sequence[Seg], language: str) -> Translation:
        """Translate every segment into BCP-47 `language`; raise CannotTranslate if unable."""
