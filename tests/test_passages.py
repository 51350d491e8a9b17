"""Search passages: each segment, and windows of consecutive segments in order."""

from __future__ import annotations

from reelscribe.db.search import WINDOW_SEGMENTS, Passage, passages


def test_windows_are_consecutive_segments_only() -> None:
    got = passages([(0, 5, "A"), (5, 10, "B"), (10, 15, "C"), (15, 20, "D")])
    assert WINDOW_SEGMENTS == 3
    assert got == [
        Passage(0, 5, "A"),
        Passage(5, 10, "B"),
        Passage(10, 15, "C"),
        Passage(15, 20, "D"),
        Passage(0, 15, "A B C"),
        Passage(5, 20, "B C D"),
        Passage(10, 20, "C D"),
    ]


def test_every_passage_runs_forward_in_time() -> None:
    segments = [(float(i), float(i) + 0.9, f"s{i}") for i in range(40)]
    for p in passages(segments):
        assert p.start_s < p.end_s
        first, last = p.text.split()[0], p.text.split()[-1]
        assert int(first[1:]) <= int(last[1:])


def test_blank_segments_are_skipped_and_tiny_inputs_work() -> None:
    assert passages([]) == []
    assert passages([(0, 1, "  ")]) == []
    assert passages([(0, 1, "only")]) == [Passage(0, 1, "only")]
