"""Pure functions: chunk planning, silence compaction, captions, quality flags."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from reelscribe import captions, quality, speech
from reelscribe.speech import Region
from reelscribe.v1 import transcript_service_pb2 as tpb
from tests.support.media import LECTURE
from tests.support.mediagen import speech_samples


def _regions(spans: list[tuple[float, float]], duration: float) -> list[Region]:
    return speech.regions_from_speech(spans, duration)


def test_regions_cover_the_timeline_alternately() -> None:
    regions = _regions([(1.0, 3.0), (5.0, 9.0)], 10.0)
    assert [(r.start_s, r.end_s, r.is_speech) for r in regions] == [
        (0.0, 1.0, False),
        (1.0, 3.0, True),
        (3.0, 5.0, False),
        (5.0, 9.0, True),
        (9.0, 10.0, False),
    ]


def test_chunks_are_cut_only_inside_silences() -> None:
    # Speech of 9 s with 1 s pauses, for 10 minutes.
    spans = [(t, t + 9.0) for t in range(0, 600, 10)]
    regions = _regions([(float(a), b) for a, b in spans], 600.0)
    plan = speech.plan_chunks(regions, 600.0, target_s=120.0)
    assert plan[0][0] == 0.0 and plan[-1][1] == 600.0
    assert all(a < b for a, b in plan)
    assert all(abs(plan[i][1] - plan[i + 1][0]) < 1e-9 for i in range(len(plan) - 1))
    silences = [r for r in regions if not r.is_speech]
    for _, end in plan[:-1]:
        assert any(r.start_s < end < r.end_s for r in silences)
    assert 4 <= len(plan) <= 6
    assert all(100 <= b - a <= 140 for a, b in plan[:-1])


def test_chunks_are_of_even_length() -> None:
    # 639 s: six chunks of about 106 s, not five of 120 s and a short last one.
    spans = [(float(t), t + 9.0) for t in range(0, 639, 10)]
    plan = speech.plan_chunks(_regions(spans, 639.0), 639.0, target_s=120.0)
    lengths = [b - a for a, b in plan]
    assert len(plan) == 6 and max(lengths) <= 120.0
    assert max(lengths) - min(lengths) <= 10.0, lengths


def test_a_cut_is_found_when_the_silences_near_the_ideal_are_too_close() -> None:
    # Short chunks asked for, but each must be at least 20 s: the only silence
    # that leaves both sides that long is far from every ideal boundary.
    silences = [(3.2, 3.5), (7.5, 7.8), (12.0, 12.2), (15.8, 16.0), (19.8, 20.1), (21.5, 21.7)]
    silences += [(25.0, 25.3), (29.3, 29.6), (33.8, 34.0), (37.6, 37.8), (41.6, 41.9)]
    bounds = [0.0, *[x for s in silences for x in s], 43.6]
    spans = [(bounds[i], bounds[i + 1]) for i in range(0, len(bounds), 2)]
    plan = speech.plan_chunks(_regions(spans, 43.6), 43.6, target_s=10.0)
    assert plan == [(0.0, pytest.approx(21.6)), (pytest.approx(21.6), 43.6)]


def test_short_or_unbroken_audio_is_one_chunk() -> None:
    assert speech.plan_chunks(_regions([(0.0, 90.0)], 90.0), 90.0, target_s=120.0) == [(0.0, 90.0)]
    unbroken = _regions([(0.0, 900.0)], 900.0)
    assert speech.plan_chunks(unbroken, 900.0, target_s=120.0) == [(0.0, 900.0)]


def test_compaction_shortens_long_silences_and_maps_time_back() -> None:
    rate = speech.SAMPLE_RATE_HZ
    audio = np.arange(30 * rate, dtype=np.float32)
    regions = _regions([(0.0, 2.0), (12.0, 14.0), (14.3, 20.0)], 30.0)
    clip, tmap = speech.compact(audio, 0.0, 30.0, regions, keep_silence_s=0.6)
    # 2 s + 0.6 s + 2 s + 0.3 s (short pause kept whole) + 5.7 s + 0.6 s
    assert len(clip) / rate == pytest.approx(2 + 0.6 + 2 + 0.3 + 5.7 + 0.6, abs=1e-3)
    assert tmap.to_original(1.0) == pytest.approx(1.0)
    assert tmap.to_original(2.6 + 0.5) == pytest.approx(12.5)
    # Samples line up with the original timeline through the map.
    t = 2.6 + 1.0
    assert clip[round(t * rate)] == audio[round(tmap.to_original(t) * rate)]


def test_word_ends_never_run_into_silence() -> None:
    regions = _regions([(1.0, 3.0), (5.0, 9.0)], 10.0)
    assert speech.speech_end_after(regions, 2.5) == 3.0
    assert speech.speech_end_after(regions, 4.0) == 9.0


def test_zero_length_words_get_a_real_duration() -> None:
    min_s = speech.MIN_WORD_S
    # At the end of its speech region, followed by silence: grows into the silence.
    assert speech.lengthen_words([(0.0, 0.5), (0.9, 0.9), (2.0, 2.5)]) == [
        (0.0, 0.5),
        pytest.approx((0.9, 0.9 + min_s)),
        (2.0, 2.5),
    ]
    # No silence after: grows into the silence before.
    assert speech.lengthen_words([(0.0, 0.5), (0.9, 0.9), (0.9, 1.5)])[1] == pytest.approx(
        (0.9 - min_s, 0.9)
    )
    # Packed between words, twice at the same instant: the neighbours give time.
    spans = speech.lengthen_words([(0.0, 1.0), (1.0, 1.0), (1.0, 1.0), (1.0, 2.0)])
    for (_, b), (c, _) in itertools.pairwise(spans):
        assert b <= c + 1e-9, spans  # never overlapping the next word
    assert all(b - a >= min_s - 1e-9 for a, b in spans), spans
    assert spans[0][1] == pytest.approx(1.0 - min_s) and spans[3][0] == pytest.approx(1.0 + min_s)
    # The last word stops at the end of the media; long words are untouched.
    assert speech.lengthen_words([(0.0, 0.3), (9.99, 9.99)], end_s=10.0) == [
        (0.0, 0.3),
        pytest.approx((9.99 - (min_s - 0.01), 10.0)),
    ]
    assert speech.lengthen_words([(0.1, 0.2), (0.25, 0.3)], min_s=0.02) == [(0.1, 0.2), (0.25, 0.3)]
    assert speech.lengthen_words([]) == []


def test_media_duration_is_whole_milliseconds() -> None:
    from reelscribe import convert

    # Sample counts divided by the rate: 59.9 s is stored as 59.899999999...
    noisy = 958_400 / 16_000 - 1e-10
    assert convert.duration(noisy).ToJsonString() == "59.900s"
    assert (convert.duration(noisy).seconds, convert.duration(noisy).nanos) == (59, 900_000_000)
    assert convert.duration(86.03200000000001).ToJsonString() == "86.032s"
    assert convert.duration(0.9999996).ToJsonString() == "1s"


def _segment(text: str, start: float, end: float, words: list[tuple[float, float, str]]):
    return tpb.Segment(
        text=text,
        start_seconds=start,
        end_seconds=end,
        words=[tpb.Word(start_seconds=a, end_seconds=b, text=w) for a, b, w in words],
    )


def test_captions_follow_line_and_duration_limits() -> None:
    words = [(i * 0.4, i * 0.4 + 0.35, f" word{i:02d}") for i in range(60)]
    seg = _segment(" ".join(w for _, _, w in words), 0.0, 24.0, words)
    caps = captions.layout([seg], captions.CaptionLayout())
    assert len(caps) > 1
    for cap in caps:
        assert 1 <= len(cap.lines) <= 2
        assert all(len(line) <= 42 for line in cap.lines)
        assert cap.end_s - cap.start_s <= 7.0
    assert all(caps[i].end_s <= caps[i + 1].start_s for i in range(len(caps) - 1))
    narrow = captions.layout([seg], captions.CaptionLayout(max_chars_per_line=20, max_lines=1))
    assert all(len(c.lines) == 1 and len(c.lines[0]) <= 20 for c in narrow)


def test_srt_and_vtt_formats() -> None:
    seg = _segment(
        "Hello there. General idea.",
        61.5,
        64.0,
        [
            (61.5, 62.0, " Hello"),
            (62.0, 62.4, " there."),
            (62.9, 63.4, " General"),
            (63.4, 64.0, " idea."),
        ],
    )
    caps = captions.layout([seg], captions.CaptionLayout())
    assert [c.lines for c in caps] == [("Hello there.",), ("General idea.",)]
    srt = captions.to_srt(caps)
    assert srt.startswith("1\n00:01:01,500 --> 00:01:02,400\nHello there.\n\n2\n")
    vtt = captions.to_vtt(caps)
    assert vtt.startswith("WEBVTT\n\n00:01:01.500 --> 00:01:02.400\nHello there.\n")


def test_hallucination_flags() -> None:
    regions = _regions([(0.0, 5.0)], 20.0)
    common = {"no_speech_prob": 0.1, "avg_logprob": -0.3, "regions": regions}
    assert not quality.is_hallucination(
        "Fine words.", 1, 4, compression_ratio=1.2, previous_texts=[], **common
    )
    assert quality.is_hallucination(
        "la la la la", 1, 4, compression_ratio=3.1, previous_texts=[], **common
    )
    assert quality.is_hallucination(
        "Thank you.",
        1,
        4,
        compression_ratio=1.0,
        previous_texts=["Thank you.", "thank you."],
        **common,
    )
    silent = {"no_speech_prob": 0.8, "avg_logprob": -0.3, "regions": regions}
    assert quality.is_hallucination(
        "Thanks for watching!", 10, 15, compression_ratio=1.0, previous_texts=[], **silent
    )


def test_word_error_rate() -> None:
    from bench.wer import edit_distance, normalize, wer

    assert normalize("The Earth's ocean — deep, cold!") == [
        "the",
        "earth's",
        "ocean",
        "deep",
        "cold",
    ]
    assert wer("the ocean is deep", "The ocean is deep.") == 0.0
    # One substitution, one deletion, one insertion over four reference words.
    assert wer("the ocean is deep", "a ocean deep and") == 0.75
    assert edit_distance(["a", "b"], []) == 2 and edit_distance([], ["x"]) == 1
    assert wer("one two", "three four five six") == 2.0  # insertions can exceed 100 %


def test_vad_pieces_run_in_parallel_with_the_same_result() -> None:
    # About 130 s of real speech: cut into two pieces at a quiet moment.
    audio = speech_samples(LECTURE, repeat=6)
    spans = speech._pieces(audio, 0, len(audio))
    assert len(spans) == 2 and spans[0][0] == 0 and spans[-1][1] == len(audio)
    cut = spans[0][1]
    around = audio[cut - 80 : cut + 80]
    assert float(np.sqrt(np.mean(around.astype(np.float64) ** 2))) < 0.01  # a quiet moment
    one = speech.detect_regions(audio, threads=1)
    two = speech.detect_regions(audio, threads=2)
    assert one == two
    assert sum(r.duration_s for r in one if r.is_speech) > 60


def test_vad_in_steps_scores_as_faster_whisper_and_reads_the_file_in_pieces(
    tmp_path: Path,
) -> None:
    from faster_whisper.vad import SileroVADModel, get_speech_timestamps, get_vad_model

    from workers.decoding import AudioFile

    # About 65 s of real speech: over 2,000 windows, several calls of 256.
    audio = speech_samples(LECTURE, repeat=3)
    speech.detect_regions(audio[:16000])  # installs the stepped model
    stepped = get_vad_model()
    assert isinstance(stepped, speech._VadInSteps)
    original = stepped.model
    assert isinstance(original, SileroVADModel)
    padded = np.pad(audio, (0, 512 - len(audio) % 512))
    assert len(padded) // 512 > 4 * speech._VAD_WINDOWS_PER_CALL
    # Each is given its own copy: both zero the last window's tail in place.
    assert np.array_equal(stepped(padded.copy()), original(padded.copy()))
    assert get_speech_timestamps(audio) == _unstepped_timestamps(original, audio)

    # The job's audio file, read a slice at a time, gives the same regions.
    path = tmp_path / "audio.f32"
    audio.astype(np.float32).tofile(path)
    file = AudioFile(path)
    assert len(file) == len(audio) and np.array_equal(file[100:612], audio[100:612])
    assert len(file[len(audio) - 5 : len(audio) + 50]) == 5 and len(file[10:10]) == 0
    assert speech.detect_regions(file) == speech.detect_regions(audio)


def _unstepped_timestamps(model: object, audio: np.ndarray) -> list[dict[str, int]]:
    """faster-whisper's own timestamps, with its own model (the stepped one set aside)."""
    from faster_whisper import vad

    stepped = vad.get_vad_model
    vad.get_vad_model = lambda: model
    try:
        return vad.get_speech_timestamps(audio)
    finally:
        vad.get_vad_model = stepped
