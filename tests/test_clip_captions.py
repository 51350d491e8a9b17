"""Clip captions: laid out from the transcript's words for the clip's picture,
and moved onto the clip's clock (no FFmpeg here; tests/test_clips.py renders)."""

from __future__ import annotations

import pytest

from reelscribe import captions
from reelscribe.clips import clip_cues, rebase_captions
from reelscribe.v1 import transcript_service_pb2 as tpb
from tests.support.transcripts import LONG


def test_rebase_captions_shifts_clips_and_drops() -> None:
    cues = [
        (0.0, 1.0, "before"),
        (1.5, 2.5, "straddles start"),
        (3.0, 4.0, "  inside  \n second line "),
        (4.5, 6.0, "straddles end"),
        (6.0, 7.0, "after"),
        (3.2, 3.8, "   "),
    ]
    assert rebase_captions(cues, start_s=2.0, duration_s=3.0) == [
        (0.0, 0.5, "straddles start"),
        (1.0, 2.0, "inside\nsecond line"),
        (2.5, 3.0, "straddles end"),
    ]
    assert rebase_captions(cues, start_s=20.0, duration_s=3.0) == []


@pytest.mark.parametrize("vertical, max_chars", [(True, 24), (False, 42)])
def test_clip_captions_follow_the_caption_layout(vertical: bool, max_chars: int) -> None:
    cues = clip_cues([LONG], 2.0, 9.5, vertical=vertical)

    assert len(cues) >= 2
    for start, end, text in cues:
        lines = text.split("\n")
        assert len(lines) <= 2 and all(len(line) <= max_chars for line in lines), text
        assert 2.0 <= start < end <= 9.5
        assert end - start >= captions.MIN_DURATION_S
    # Only the words spoken in the clip, each once, in order; the caption
    # starts with the first of them, not with its segment.
    inside = [w for w in LONG.words if (w.start_seconds + w.end_seconds) / 2 >= 2.0]
    said = " ".join(text.replace("\n", " ") for _, _, text in cues)
    assert said == " ".join(w.text.strip() for w in inside)
    assert cues[0][0] == pytest.approx(max(2.0, inside[0].start_seconds))
    assert [start for start, _, _ in cues] == sorted(start for start, _, _ in cues)


def test_clip_captions_use_the_words_timings() -> None:
    # Words bunched at the start of a long segment: the captions end with the
    # speech, not with the segment.
    seg = tpb.Segment(
        start_seconds=0.0,
        end_seconds=10.0,
        text=" One. Two",
        words=[
            tpb.Word(start_seconds=1.0, end_seconds=1.6, text=" One."),
            tpb.Word(start_seconds=1.6, end_seconds=2.2, text=" Two"),
        ],
    )
    assert clip_cues([seg], 0.0, 10.0, vertical=False) == [(1.0, 1.6, "One."), (1.6, 2.2, "Two")]
