"""Diarization error rate, the standard definition (as NIST md-eval scores it).

DER = (missed speech + false alarm + speaker confusion) / total reference
speech, over the scored time: a collar (0.25 s by default) on each side of
every reference boundary is not scored, and hypothesis speakers are mapped to
reference speakers one-to-one so that their overlap is largest (Hungarian
assignment). Overlapping speech is supported (a frame may hold several
speakers), although the conversations measured here have none.
Computed on a 10 ms grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

#: (start_s, end_s, speaker)
Turn = tuple[float, float, int]
STEP_S = 0.01


@dataclass(frozen=True)
class Der:
    """The components of a DER, in seconds of scored time."""

    reference_s: float
    missed_s: float
    false_alarm_s: float
    confusion_s: float

    @property
    def rate(self) -> float:
        """The diarization error rate (0 when there is no reference speech)."""
        errors = self.missed_s + self.false_alarm_s + self.confusion_s
        return errors / self.reference_s if self.reference_s else 0.0


def _grid(turns: Sequence[Turn], frames: int) -> tuple[npt.NDArray[np.bool_], list[int]]:
    speakers = sorted({s for _, _, s in turns})
    grid = np.zeros((len(speakers), frames), dtype=bool)
    for start, end, who in turns:
        grid[speakers.index(who), round(start / STEP_S) : round(end / STEP_S)] = True
    return grid, speakers


def der(reference: Sequence[Turn], hypothesis: Sequence[Turn], *, collar_s: float = 0.25) -> Der:
    """The DER of `hypothesis` against `reference`."""
    end_s = max([e for _, e, _ in [*reference, *hypothesis]], default=0.0)
    frames = round(end_s / STEP_S) + 1
    ref, _ = _grid(reference, frames)
    hyp, _ = _grid(hypothesis, frames)
    scored = np.ones(frames, dtype=bool)
    c = round(collar_s / STEP_S)
    for start, end, _ in reference:
        for t in (start, end):
            f = round(t / STEP_S)
            scored[max(0, f - c) : f + c] = False
    ref, hyp = ref[:, scored], hyp[:, scored]
    n_ref, n_hyp = ref.sum(axis=0), hyp.sum(axis=0)
    # Optimal one-to-one mapping: most frames where both speak.
    correct = 0
    if len(ref) and len(hyp):
        overlap = ref.astype(np.int64) @ hyp.T.astype(np.int64)
        rows, cols = linear_sum_assignment(-overlap)
        correct_frames = np.zeros(ref.shape[1], dtype=np.int64)
        for r, h in zip(rows, cols, strict=True):
            correct_frames += ref[r] & hyp[h]
        correct = int(correct_frames.sum())
    missed = np.maximum(0, n_ref - n_hyp).sum()
    false_alarm = np.maximum(0, n_hyp - n_ref).sum()
    confusion = np.minimum(n_ref, n_hyp).sum() - correct
    return Der(
        reference_s=float(n_ref.sum() * STEP_S),
        missed_s=float(missed * STEP_S),
        false_alarm_s=float(false_alarm * STEP_S),
        confusion_s=float(confusion * STEP_S),
    )
