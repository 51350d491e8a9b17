"""Jyutping / Yale romanization (reelscribe.cantonese).

Expected readings are standard Jyutping (LSHK) and Yale with tone diacritics,
checked by hand, not copied from whatever the code returns.
"""

from __future__ import annotations

import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from reelscribe import cantonese, captions
from reelscribe.captions import CaptionLayout
from reelscribe.v1 import transcript_service_pb2 as tpb

_SRT_TIME = re.compile(r"^\d{2}:\d{2}:\d{2},\d{3} --> \d{2}:\d{2}:\d{2},\d{3}$")
_VTT_TIME = re.compile(r"^\d{2}:\d{2}:\d{2}\.\d{3} --> \d{2}:\d{2}:\d{2}\.\d{3}$")


def test_import_does_not_load_pycantonese() -> None:
    # The data load takes over a second; importing the module must not pay it.
    code = "import sys, reelscribe.cantonese; print('pycantonese' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    assert out.strip() == "False"


def test_concurrent_first_use_gives_the_same_readings() -> None:
    # Run first in this file so that, alone, it races the lazy load itself.
    text = "香港人講廣東話"
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(cantonese.romanize_text, [text] * 32))
    assert set(results) == {cantonese.romanize_text(text)}
    assert results[0][0] == "hoeng1 gong2 jan4 gong2 gwong2 dung1 waa2"


@pytest.mark.parametrize(
    ("text", "jyutping"),
    [
        ("香港人講廣東話", "hoeng1 gong2 jan4 gong2 gwong2 dung1 waa2"),
        ("我哋去飲茶", "ngo5 dei6 heoi3 jam2 caa4"),
        ("唔該", "m4 goi1"),
        # Word context picks the reading of 行: "hong4" in 銀行, "haang4" in 行路.
        ("銀行", "ngan4 hong4"),
        ("行路", "haang4 lou6"),
        # Latin words and digits pass through; pycantonese alone would drop the
        # space and read a lone "3" as "saam1".
        ("我用iPhone 15", "ngo5 jung6 iPhone 15"),
        ("2024年3月", "2024 nin4 3 jyut6"),
        # Whisper's leading space goes; punctuation stays, attached.
        (" 香港人講廣東話。", "hoeng1 gong2 jan4 gong2 gwong2 dung1 waa2\u3002"),
        ("「(廣東話)」", "\u300c(gwong2 dung1 waa2)\u300d"),
        # 𠮶度 is not a known word: per-character fallback reads 度, and 𠮶
        # (Extension B, no reading in pycantonese) is kept as written.
        ("𠮶度", "𠮶 dou6"),
    ],
)
def test_jyutping(text: str, jyutping: str) -> None:
    assert cantonese.romanize_text(text)[0] == jyutping


@pytest.mark.parametrize(
    ("text", "yale"),
    [
        ("香港", "hēung góng"),
        ("香港人講廣東話", "hēung góng yàhn góng gwóng dūng wá"),
        ("我哋去飲茶", "ngóh deih heui yám chàh"),
        ("唔該", "m\u0300h gōi"),
        ("我用iPhone 15", "ngóh yuhng iPhone 15"),
    ],
)
def test_yale(text: str, yale: str) -> None:
    assert cantonese.romanize_text(text)[1] == yale


@pytest.mark.parametrize("text", ["", "Hello,  world!", " 15 % off ", "...", "\u3002"])
def test_text_without_chinese_is_untouched(text: str) -> None:
    assert cantonese.romanize_text(text) == (text, text)


def test_romanize_words_uses_context_and_keeps_alignment() -> None:
    words = [" 我", "哋", "去", "飲", "茶", " iPhone", " 15", "\u3002"]
    assert cantonese.romanize_words(words) == [
        "ngo5",
        "dei6",
        "heoi3",
        "jam2",
        "caa4",
        "iPhone",
        "15",
        "\u3002",
    ]
    # 行 alone is ambiguous; the neighbouring words decide.
    assert cantonese.romanize_words([" 銀", "行", " 行", "路"]) == [
        "ngan4",
        "hong4",
        "haang4",
        "lou6",
    ]
    assert cantonese.romanize_words([" 香港", "人。"]) == ["hoeng1 gong2", "jan4\u3002"]
    assert cantonese.romanize_words([]) == []
    assert cantonese.romanize_words(["", " "]) == ["", ""]


def test_is_chinese_and_needs_romanization() -> None:
    assert cantonese.is_chinese("我用iPhone")
    assert cantonese.is_chinese("𠮶")  # Extension B, outside the BMP
    assert not cantonese.is_chinese("iPhone 15\u3002")
    assert not cantonese.is_chinese("")
    assert cantonese.needs_romanization("yue", "廣東話")
    assert cantonese.needs_romanization("zh", "廣東話")
    assert cantonese.needs_romanization("zh-HK", "廣東話")
    assert not cantonese.needs_romanization("yue", "hello")
    assert not cantonese.needs_romanization("en", "廣東話")
    assert not cantonese.needs_romanization("ja", "日本語")


def _seg(start_s: float, end_s: float, text: str, jyutping: str = "") -> tpb.Segment:
    return tpb.Segment(start_seconds=start_s, end_seconds=end_s, text=text, jyutping=jyutping)


_SEGMENTS = [
    _seg(0.0, 1.5, " 香港人講廣東話。"),
    _seg(1.5, 3.0, "Hello there"),
    _seg(3.0, 3.5, "   "),  # blank: no cue, numbering stays consecutive
    _seg(61.5, 64.25, " 我哋去飲茶"),
]


def _track(segments: list[tpb.Segment], fmt: str, lay: CaptionLayout | None = None) -> str:
    caps = cantonese.romanized_layout(segments, lay or CaptionLayout())
    return captions.to_srt(caps) if fmt == "srt" else captions.to_vtt(caps)


def _blocks(track: str) -> list[list[str]]:
    assert track.endswith("\n") and not track.endswith("\n\n")
    return [b.split("\n") for b in track.rstrip("\n").split("\n\n")]


def test_srt_track_pairs_each_chinese_line_with_its_romanization() -> None:
    track = _track(_SEGMENTS, "srt")
    blocks = _blocks(track)
    assert [b[0] for b in blocks] == ["1", "2", "3"]
    assert all(_SRT_TIME.match(b[1]) for b in blocks)
    assert blocks[0][1:] == [
        "00:00:00,000 --> 00:00:01,500",
        "香港人講廣東話\u3002",
        "hoeng1 gong2 jan4 gong2 gwong2 dung1 waa2\u3002",
    ]
    # Nothing to romanize: one line, not the same line twice.
    assert blocks[1][1:] == ["00:00:01,500 --> 00:00:03,000", "Hello there"]
    assert blocks[2][1:] == [
        "00:01:01,500 --> 00:01:04,250",
        "我哋去飲茶",
        "ngo5 dei6 heoi3 jam2 caa4",
    ]


def test_vtt_track_pairs_each_chinese_line_with_its_romanization() -> None:
    track = _track(_SEGMENTS, "vtt")
    assert track.startswith("WEBVTT\n\n")
    blocks = _blocks(track.removeprefix("WEBVTT\n\n"))
    assert all(_VTT_TIME.match(b[0]) for b in blocks)
    assert blocks == [
        [
            "00:00:00.000 --> 00:00:01.500",
            "香港人講廣東話\u3002",
            "hoeng1 gong2 jan4 gong2 gwong2 dung1 waa2\u3002",
        ],
        ["00:00:01.500 --> 00:00:03.000", "Hello there"],
        ["00:01:01.500 --> 00:01:04.250", "我哋去飲茶", "ngo5 dei6 heoi3 jam2 caa4"],
    ]


def test_captions_use_given_romanization_and_keep_cues_intact() -> None:
    segments = [
        # A given romanization (here Yale) is used as is, split over the characters.
        _seg(0.0, 1.0, "香港\u3002", "hēung góng\u3002"),
        # A line break inside the text must not split or end the cue.
        _seg(3.0, 4.0, "香港\n\n人"),
        # Zero-length segment: a cue long enough to read, not a 1 ms flash.
        _seg(6.0, 6.0, "A<B & 唔該"),
    ]
    srt = _blocks(_track(segments, "srt"))
    assert srt[0][2:] == ["香港\u3002", "hēung góng\u3002"]
    assert srt[1][2:] == ["香港人", "hoeng1 gong2 jan4"]
    assert srt[2][1] == "00:00:06,000 --> 00:00:06,500"
    vtt = _blocks(_track(segments, "vtt").removeprefix("WEBVTT\n\n"))
    # WebVTT cue text is markup, so "<" and "&" are escaped there, once.
    assert vtt[2][1:] == ["A&lt;B &amp;唔該", "A&lt;B &amp; m4 goi1"]


_LONG = " 香港人講廣東話\uff0c我哋今日去飲茶\uff0c之後返屋企食飯\uff0c聽日再去行山同埋睇戲\u3002"


def _syllables(lines: list[str]) -> list[str]:
    return re.findall(r"[a-z]+[1-6]", " ".join(lines))


@pytest.mark.parametrize("max_chars, max_lines", [(42, 2), (24, 2), (16, 4)])
def test_romanization_lines_follow_the_caption_layout(max_chars: int, max_lines: int) -> None:
    """A long segment is no longer one giant cue: each caption holds lines of
    text with their romanization under them, and both count against the limits."""
    lay = CaptionLayout(max_chars_per_line=max_chars, max_lines=max_lines)
    caps = cantonese.romanized_layout([_seg(10.0, 22.0, _LONG)], lay)
    assert len(caps) > 1
    for cap in caps:
        assert len(cap.lines) <= max_lines and len(cap.lines) % 2 == 0, cap
        assert all(len(line) <= max_chars for line in cap.lines), cap
        assert cap.end_s - cap.start_s >= captions.MIN_DURATION_S
        for text, roman in zip(cap.lines[::2], cap.lines[1::2], strict=True):
            # Every romanization line reads the line above it, a syllable per character.
            assert len(_syllables([roman])) == sum(cantonese.is_chinese(c) for c in text)
    assert "".join(line for c in caps for line in c.lines[::2]) == _LONG.strip()
    assert _syllables([line for c in caps for line in c.lines[1::2]]) == _syllables(
        [cantonese.romanize_text(_LONG)[0]]
    )
    assert caps[0].start_s == 10.0 and caps[-1].end_s == pytest.approx(22.0)


def test_romanization_lines_use_the_words_jyutping() -> None:
    words = [
        (0.0, 0.6, " 銀行", "ngan4 hong4"),
        (0.6, 0.9, "行", "haang4"),
        (0.9, 1.2, "路", "lou6"),
    ]
    seg = tpb.Segment(
        start_seconds=0.0,
        end_seconds=1.2,
        text=" 銀行行路",
        words=[
            tpb.Word(start_seconds=a, end_seconds=b, text=t, jyutping=j) for a, b, t, j in words
        ],
    )
    caps = cantonese.romanized_layout([seg], CaptionLayout())
    assert [c.lines for c in caps] == [("銀行行路", "ngan4 hong4 haang4 lou6")]
    # Each word's own reading is used, not one computed again from the text.
    seg.words[0].jyutping = "NGAN HONG"
    assert cantonese.romanized_layout([seg], CaptionLayout())[0].lines[1] == (
        "NGAN HONG haang4 lou6"
    )
    # Words without readings are read in their segment's context.
    for word in seg.words:
        word.jyutping = ""
    assert cantonese.romanized_layout([seg], CaptionLayout())[0].lines[1] == (
        "ngan4 hong4 haang4 lou6"
    )
    # A narrow layout wraps between words so the romanization fits too.
    narrow = cantonese.romanized_layout([seg], CaptionLayout(max_chars_per_line=12))
    assert [c.lines for c in narrow] == [("銀行", "ngan4 hong4"), ("行路", "haang4 lou6")]
