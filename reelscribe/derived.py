"""Which stages run after transcription (or instead of it, for a child job)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

#: Post-transcription stages in the order they run.
ORDER: tuple[str, ...] = ("ANALYZE", "HIGHLIGHTS", "RENDER_CLIPS", "TRANSLATE", "ROMANIZE")
#: What each stage needs first.
NEEDS: dict[str, tuple[str, ...]] = {
    "HIGHLIGHTS": ("ANALYZE",),
    "RENDER_CLIPS": ("HIGHLIGHTS",),
}
#: Languages whose transcripts get romanized without being asked.
AUTO_ROMANIZE = frozenset({"yue"})


def requested(options: Mapping[str, Any]) -> list[str]:
    """The stages a job's options ask for, with what they need, in running order."""
    wanted = set(options.get("extra_stages") or ())
    if options.get("highlight_count"):
        wanted.add("HIGHLIGHTS")
    if options.get("translate_to"):
        wanted.add("TRANSLATE")
    return close(wanted)


def close(stages: Iterable[str]) -> list[str]:
    """`stages` plus every stage they need, in running order."""
    todo, done = list(stages), set()
    while todo:
        stage = todo.pop()
        if stage not in done:
            done.add(stage)
            todo.extend(NEEDS.get(stage, ()))
    return [s for s in ORDER if s in done]


def for_transcript(options: Mapping[str, Any], language: str) -> list[str]:
    """The stages to run once the transcript (in `language`) exists."""
    stages = requested(options)
    if language in AUTO_ROMANIZE and "ROMANIZE" not in stages:
        stages = close([*stages, "ROMANIZE"])
    return stages
