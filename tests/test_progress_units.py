"""The overall progress of a job from stage weights (`reelscribe.progress`), no stack."""

from __future__ import annotations

import itertools

import pytest

from reelscribe import progress
from reelscribe.options import JobOptions
from reelscribe.states import Stage


def _points(plan: progress.ProgressPlan) -> list[float]:
    """Progress at the start, middle and end of every planned stage, in order."""
    return [plan.overall(s, f) for s in plan.stages for f in (0.0, 0.5, 1.0)]


def test_a_plain_transcription_runs_from_0_to_1_through_its_stages() -> None:
    plan = progress.plan_for(JobOptions(), transcribes=True)
    assert plan.stages == (*progress.TRANSCRIPTION, Stage.FINALIZE)
    points = _points(plan)
    assert points[0] == 0.0 and points[-1] == 1.0
    assert points == sorted(points)
    # Transcription is most of the work.
    share = plan.overall(Stage.TRANSCRIBE, 1.0) - plan.overall(Stage.TRANSCRIBE, 0.0)
    assert share > 0.7


def test_extra_stages_extend_the_plan_instead_of_restarting_it() -> None:
    options = JobOptions(extra_stages=(Stage.HIGHLIGHTS,))
    plan = progress.plan_for(options, transcribes=True)
    # HIGHLIGHTS needs ANALYZE: both are planned, after indexing.
    assert plan.stages[-3:] == (Stage.ANALYZE, Stage.HIGHLIGHTS, Stage.FINALIZE)
    points = _points(plan)
    assert points == sorted(points) and points[0] == 0.0 and points[-1] == 1.0
    # Transcribed means most of the way, not done; analysis starts there.
    assert 0.6 < plan.overall(Stage.INDEX, 1.0) == plan.overall(Stage.ANALYZE, 0.0) < 0.95
    # The same point of transcription is further along in a shorter plan.
    plain = progress.plan_for(JobOptions(), transcribes=True)
    assert plain.overall(Stage.TRANSCRIBE, 0.5) > plan.overall(Stage.TRANSCRIBE, 0.5)


def test_a_child_job_runs_from_0_to_1_over_its_own_stages() -> None:
    plan = progress.plan_for(JobOptions(extra_stages=(Stage.ANALYZE,)), transcribes=False)
    assert plan.stages == (Stage.ANALYZE, Stage.FINALIZE)
    assert plan.overall(Stage.ANALYZE) == 0.0
    assert 0.85 < plan.overall(Stage.ANALYZE, 1.0) < 1.0
    assert plan.overall(Stage.FINALIZE, 1.0) == 1.0


def test_the_transcript_language_can_add_a_stage() -> None:
    options = JobOptions()
    assert Stage.ROMANIZE not in progress.plan_for(options, transcribes=True).stages
    cantonese = progress.plan_for(options, transcribes=True, language="yue")
    assert Stage.ROMANIZE in cantonese.stages
    # The requested language counts until the transcript says otherwise.
    asked = progress.plan_for(JobOptions(language="yue"), transcribes=True)
    assert Stage.ROMANIZE in asked.stages


def test_weights_add_up_and_every_stage_has_a_place() -> None:
    options = JobOptions(extra_stages=(Stage.RENDER_CLIPS, Stage.TRANSLATE), translate_to="fr")
    plan = progress.plan_for(options, transcribes=True)
    assert plan.total == pytest.approx(sum(progress.STAGE_WEIGHTS[s] for s in plan.stages))
    # Stage widths add up to the whole bar.
    widths = [plan.overall(s, 1.0) - plan.overall(s, 0.0) for s in plan.stages]
    assert sum(widths) == pytest.approx(1.0, abs=1e-5)
    # Downloading and probing count as preparing the audio; unplanned stages sit
    # between their neighbours; fractions are clamped.
    assert plan.overall(Stage.INGEST, 0.3) == plan.overall(Stage.EXTRACT_AUDIO, 0.3)
    short = progress.plan_for(JobOptions(), transcribes=True)
    assert short.overall(Stage.ANALYZE) == short.overall(Stage.FINALIZE, 0.0)
    assert short.overall(Stage.TRANSCRIBE, 2.0) == short.overall(Stage.TRANSCRIBE, 1.0)
    assert short.overall(Stage.TRANSCRIBE, -1.0) == short.overall(Stage.TRANSCRIBE, 0.0)


@pytest.mark.parametrize(
    "extra", [(), (Stage.ANALYZE,), (Stage.RENDER_CLIPS,), (Stage.ROMANIZE, Stage.TRANSLATE)]
)
def test_progress_never_decreases_along_the_stage_order(extra: tuple[Stage, ...]) -> None:
    plan = progress.plan_for(
        JobOptions(extra_stages=extra, translate_to="fr" if Stage.TRANSLATE in extra else ""),
        transcribes=True,
    )
    ordered = [s for s in Stage if s in plan.stages]
    assert list(plan.stages) == ordered
    points = [plan.overall(s, f / 10) for s, f in itertools.product(ordered, range(11))]
    assert points == sorted(points)
    assert all(0.0 <= p <= 1.0 for p in points)
