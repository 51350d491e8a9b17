"""Caption layout: spelling kept, CJK without spaces, no cue too short to read."""

from __future__ import annotations

from reelscribe import captions
from reelscribe.v1 import transcript_service_pb2 as tpb


def _segment(words: list[tuple[float, float, str]]) -> tpb.Segment:
    return tpb.Segment(
        text="".join(w for _, _, w in words),
        start_seconds=words[0][0],
        end_seconds=words[-1][1],
        words=[tpb.Word(start_seconds=a, end_seconds=b, text=w) for a, b, w in words],
    )


def test_a_word_piece_stays_attached_to_its_word() -> None:
    seg = _segment(
        [(0.0, 0.4, " a"), (0.4, 0.8, " short"), (0.8, 1.1, "-lock"), (1.1, 1.5, " key")]
    )
    assert captions.layout([seg], captions.CaptionLayout())[0].lines == ("a short-lock key",)


def test_chinese_is_joined_without_spaces_and_wraps_between_characters() -> None:
    seg = _segment(
        [(0.0, 0.5, " 香港"), (0.5, 0.8, "人"), (0.8, 1.2, "講"), (1.2, 2.0, "廣東話。")]
    )
    assert captions.layout([seg], captions.CaptionLayout())[0].lines == ("香港人講廣東話。",)
    # Without word timings the characters are the units a line may break between.
    bare = tpb.Segment(text=" 香港人講廣東話\uff0c我哋去飲茶", start_seconds=0.0, end_seconds=4.0)
    narrow = captions.layout([bare], captions.CaptionLayout(max_chars_per_line=10, max_lines=1))
    assert "".join(line for c in narrow for line in c.lines) == "香港人講廣東話\uff0c我哋去飲茶"
    assert all(len(c.lines[0]) <= 10 for c in narrow)


def test_no_caption_flashes_by() -> None:
    # A zero-length word ending a sentence, with the next caption at the same instant.
    seg = _segment([(29.0, 29.32, " Done"), (29.32, 29.32, "."), (29.32, 30.0, " Next")])
    caps = captions.layout([seg], captions.CaptionLayout())
    assert len(caps) == 2
    for cap in caps:
        assert cap.end_s - cap.start_s >= captions.MIN_DURATION_S
    assert caps[0].end_s <= caps[1].start_s
    assert "00:00:29,320 --> 00:00:29,321" not in captions.to_srt(caps)


def test_webvtt_cue_text_is_escaped() -> None:
    seg = _segment([(0.0, 1.0, " A<B"), (1.0, 2.0, " &"), (2.0, 3.0, " C-->D")])
    vtt = captions.to_vtt(captions.layout([seg], captions.CaptionLayout()))
    assert "A&lt;B &amp; C--&gt;D" in vtt


def test_json_export_has_no_float_noise() -> None:
    import json

    from reelscribe import exports

    transcript = tpb.Transcript(
        name="jobs/x/transcript",
        segments=[
            tpb.Segment(
                start_seconds=86.03200000000001,
                end_seconds=87.1 + 0.2,  # 87.30000000000001
                confidence=0.912345678,
                words=[tpb.Word(start_seconds=0.1 + 0.2, end_seconds=0.5, text=" hi")],
            )
        ],
    )
    text = exports.to_json(transcript)
    assert "0000000" not in text and "9999999" not in text
    segment = json.loads(text)["segments"][0]
    assert (segment["startSeconds"], segment["endSeconds"]) == (86.032, 87.3)
    assert segment["confidence"] == 0.9123 and segment["words"][0]["startSeconds"] == 0.3
