"""Which stages run after transcription (or instead of it, for a child job)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from reelscribe.states import Stage

if TYPE_CHECKING:
    from reelscribe.options import JobOptions

#: Post-transcription stages in the order they run; the only ones a job may
#: ask for in `extra_stages`.
ORDER: tuple[Stage, ...] = (
    # First: analysis, highlights and search results can then name speakers.
    Stage.DIARIZE,
    Stage.ANALYZE,
    Stage.HIGHLIGHTS,
    Stage.RENDER_CLIPS,
    Stage.TRANSLATE,
    Stage.ROMANIZE,
)
#: What each stage needs first.
NEEDS: dict[Stage, tuple[Stage, ...]] = {
    Stage.HIGHLIGHTS: (Stage.ANALYZE,),
    Stage.RENDER_CLIPS: (Stage.HIGHLIGHTS,),
}
#: Languages whose transcripts get romanized without being asked.
AUTO_ROMANIZE = frozenset({"yue"})


def close(stages: Iterable[Stage]) -> list[Stage]:
    """`stages` plus every stage they need, in running order."""
    todo, done = list(stages), set()
    while todo:
        stage = todo.pop()
        if stage not in done:
            done.add(stage)
            todo.extend(NEEDS.get(stage, ()))
    return [s for s in ORDER if s in done]


def for_transcript(options: JobOptions, language: str) -> list[Stage]:
    """The stages to run once the transcript (in `language`) exists."""
    stages = options.requested_stages()
    if language in AUTO_ROMANIZE and Stage.ROMANIZE not in stages:
        stages = close([*stages, Stage.ROMANIZE])
    return stages
