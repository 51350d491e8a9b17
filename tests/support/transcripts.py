"""Transcript segments with known words and times, for caption tests."""

from __future__ import annotations

from reelscribe.v1 import transcript_service_pb2 as tpb


def spoken(start_s: float, end_s: float, text: str) -> tpb.Segment:
    """A transcript segment whose words share its time evenly."""
    words = text.split()
    step = (end_s - start_s) / len(words)
    return tpb.Segment(
        start_seconds=start_s,
        end_seconds=end_s,
        text=" " + text,
        words=[
            tpb.Word(
                start_seconds=start_s + i * step, end_seconds=start_s + (i + 1) * step, text=" " + w
            )
            for i, w in enumerate(words)
        ],
    )


#: One long sentence (95 characters), as a 9:16 clip once showed it on 4 lines.
LONG = spoken(
    0.5,
    9.5,
    "Deep water is cold and dark, and the ocean covers most of the surface"
    " of the earth we live on.",
)
