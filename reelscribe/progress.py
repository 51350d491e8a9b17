"""A job's overall progress: one fraction across every stage it will run.

Each stage has a weight (roughly its share of the work on a typical recording:
transcription dominates). A job's plan is the stages it will actually run —
decoding, speech detection, transcription, merging and indexing for a job
that transcribes; then each insight stage its options (and its transcript's
language) ask for; then finalizing — and being `fraction` through one stage
is the weights of the stages before it plus that fraction of its own, over
the plan's total. Workers compute every `job.progress` here; the event log
keeps it from ever decreasing (`reelscribe.db.events.append_event`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

from reelscribe.insights import plan
from reelscribe.states import Stage

if TYPE_CHECKING:
    from reelscribe.options import JobOptions

#: Relative weight of each stage that has one (normalized over a job's plan).
STAGE_WEIGHTS: Mapping[Stage, float] = MappingProxyType(
    {
        Stage.EXTRACT_AUDIO: 6.0,
        Stage.DETECT_SPEECH: 4.0,
        Stage.TRANSCRIBE: 70.0,
        Stage.MERGE: 2.0,
        Stage.INDEX: 4.0,
        Stage.DIARIZE: 10.0,
        Stage.ANALYZE: 8.0,
        Stage.HIGHLIGHTS: 3.0,
        Stage.RENDER_CLIPS: 8.0,
        Stage.TRANSLATE: 8.0,
        Stage.ROMANIZE: 2.0,
        Stage.FINALIZE: 1.0,
    }
)
#: Stages counted as part of another: downloading and probing are part of
#: preparing the audio (the EXTRACT_AUDIO share).
_COUNTED_AS: Mapping[Stage, Stage] = MappingProxyType(
    {
        Stage.QUEUED: Stage.EXTRACT_AUDIO,
        Stage.INGEST: Stage.EXTRACT_AUDIO,
        Stage.PROBE: Stage.EXTRACT_AUDIO,
    }
)
#: What a job that transcribes runs before its insight stages.
TRANSCRIPTION: tuple[Stage, ...] = (
    Stage.EXTRACT_AUDIO,
    Stage.DETECT_SPEECH,
    Stage.TRANSCRIBE,
    Stage.MERGE,
    Stage.INDEX,
)
_ORDER = {stage: n for n, stage in enumerate(Stage)}


@dataclass(frozen=True)
class ProgressPlan:
    """The weighted stages one job runs, in order."""

    stages: tuple[Stage, ...]

    def __post_init__(self) -> None:
        if not self.stages or any(s not in STAGE_WEIGHTS for s in self.stages):
            raise ValueError(f"not a plan of weighted stages: {self.stages}")

    @property
    def total(self) -> float:
        """The sum of the plan's weights."""
        return sum(STAGE_WEIGHTS[s] for s in self.stages)

    def overall(self, stage: Stage, fraction: float = 0.0) -> float:
        """The job's progress (0..1) when it is `fraction` (0..1) through `stage`.

        A stage outside the plan (one the plan could not foresee) counts as
        the point between the planned stages around it.
        """
        stage = _COUNTED_AS.get(stage, stage)
        fraction = min(1.0, max(0.0, fraction))
        if stage in self.stages:
            index = self.stages.index(stage)
            before = sum(STAGE_WEIGHTS[s] for s in self.stages[:index])
            done = before + STAGE_WEIGHTS[stage] * fraction
        else:
            done = sum(STAGE_WEIGHTS[s] for s in self.stages if _ORDER[s] < _ORDER[stage])
        return min(1.0, round(done / self.total, 6))


def plan_for(options: JobOptions, *, transcribes: bool, language: str = "") -> ProgressPlan:
    """The stages a job with `options` runs: transcription when it `transcribes`
    (a child job does not), the insight stages for a transcript in `language`
    (the requested language when not yet known), then finalizing."""
    later = plan.for_transcript(options, language or options.language)
    first = TRANSCRIPTION if transcribes else ()
    return ProgressPlan((*first, *later, Stage.FINALIZE))
