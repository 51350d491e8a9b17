"""Languages through the real stack: per-segment detection on a bilingual
recording, the assumed language of an English-only model with its warning,
offline speech translation to English, and Cantonese from speech.

Speech is made here with espeak-ng (tests/support/mediagen.py); the model
hears it for real, so assertions stick to what it hears robustly.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reelscribe import cantonese
from reelscribe.v1 import job_pb2, transcript_service_pb2
from tests.support.api import Api
from tests.support.mediagen import spoken_parts
from workers import languages

ENGLISH = (
    "The weather today is sunny and warm. Many people are walking in the park with their "
    "dogs. In the afternoon we will visit the museum and look at old paintings."
)
GERMAN = (
    "Das Wetter ist heute sonnig und warm. Viele Menschen gehen mit ihren Hunden im Park "
    "spazieren. Danach essen wir in einem kleinen Restaurant am Fluss zu Abend."
)


@pytest.fixture(scope="module")
def bilingual(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About 22 s: English, then German."""
    path = tmp_path_factory.mktemp("languages") / "en-de.wav"
    return spoken_parts(path, [("en-us", ENGLISH), ("de", GERMAN)])


async def test_bilingual_recording_per_segment_and_translated(api: Api, bilingual: Path) -> None:
    job = await api.run(bilingual, model="base", translate_to="en")
    assert job.state == job_pb2.JOB_STATE_SUCCEEDED, job.error
    assert not job.warnings
    transcript = await api.transcript(job.name)
    by_language = {s.language for s in transcript.segments}
    assert by_language == {"en", "de"}
    half = transcript.duration_seconds / 2
    for seg in transcript.segments:
        # English first, German second: each segment in its own language.
        assert seg.language == ("en" if seg.end_seconds <= half + 1 else "de"), seg
        assert 0.5 <= seg.language_probability <= 1.0
    german = " ".join(s.text for s in transcript.segments if s.language == "de")
    assert "Restaurant" in german or "Park" in german, german
    shares = {x.language: x.share for x in transcript.languages}
    assert set(shares) == {"en", "de"} and abs(sum(shares.values()) - 1.0) < 1e-6
    assert transcript.language == max(shares, key=shares.__getitem__)
    assert not transcript.language_assumed
    dominant = [s for s in transcript.segments if s.language == transcript.language]
    # The real average, not the best window.
    assert min(s.language_probability for s in dominant) <= transcript.language_probability
    assert transcript.language_probability <= max(s.language_probability for s in dominant)

    # Offline translation (no Gemini key in the test stack): same segments and times.
    reply = await api.transcripts.GetTranscript(
        transcript_service_pb2.GetTranscriptRequest(name=job.name, translation_language="en"),
        metadata=api.metadata,
        timeout=30,
    )
    translated = reply.transcript
    assert translated.language == "en"
    assert [(s.start_seconds, s.end_seconds) for s in translated.segments] == [
        (s.start_seconds, s.end_seconds) for s in transcript.segments
    ]
    english_of_german = " ".join(
        t.text
        for t, s in zip(translated.segments, transcript.segments, strict=True)
        if s.language == "de"
    ).lower()
    assert "restaurant" in english_of_german or "park" in english_of_german, english_of_german


async def test_english_only_model_assumes_and_warns(api: Api, bilingual: Path) -> None:
    job = await api.run(bilingual, model="tiny.en")
    assert job.state == job_pb2.JOB_STATE_SUCCEEDED, job.error
    transcript = await api.transcript(job.name)
    assert transcript.language == "en" and transcript.language_assumed
    assert transcript.language_probability == 0.0
    assert all(s.language == "en" and s.language_probability == 0 for s in transcript.segments)
    flagged = [s for s in transcript.segments if s.other_language_suspected]
    assert flagged and all(s.start_seconds >= transcript.duration_seconds / 3 for s in flagged)
    [warning] = job.warnings
    assert warning.code == "OTHER_LANGUAGE_SUSPECTED" and "'base'" in warning.message
    # GetJob shows the same warning.
    assert list((await api.get(job.name)).warnings) == list(job.warnings)


async def test_cantonese_from_speech(api: Api, tmp_path: Path) -> None:
    wav = spoken_parts(
        tmp_path / "yue.wav", [("yue", "香港人講廣東話。我哋今日去飲茶。今日天氣好好。")]
    )
    job = await api.run(wav, model="base", language="yue")
    assert job.state == job_pb2.JOB_STATE_SUCCEEDED, job.error
    transcript = await api.transcript(job.name)
    assert transcript.language == "yue" and transcript.language_probability == 0
    chinese = [s for s in transcript.segments if cantonese.is_chinese(s.text)]
    # What Whisper base makes of espeak's Cantonese varies; that it is Chinese,
    # stored in traditional characters and romanized per segment and word does not.
    assert chinese, [s.text for s in transcript.segments]
    for seg in chinese:
        assert seg.language == "yue"
        assert cantonese.to_traditional(seg.text) == seg.text
        assert seg.jyutping == cantonese.romanize_text(seg.text)[0]
        assert re.search(r"[a-z]+[1-6]", seg.jyutping), seg.jyutping
        assert seg.yale == cantonese.romanize_text(seg.text)[1]
        for word in seg.words:
            if cantonese.is_chinese(word.text):
                assert re.fullmatch(r"([a-z]+[1-6] ?)+", word.jyutping), word.jyutping
                assert word.yale and not re.search(r"\d", word.yale), word.yale


def test_simplified_characters_become_traditional() -> None:
    assert cantonese.to_traditional("我们说广东话") == "我們説廣東話"
    assert cantonese.romanize_text(cantonese.to_traditional("广东话"))[0] == "gwong2 dung1 waa2"


def test_unsure_unit_takes_the_likelier_language_around_it() -> None:
    raw = [
        (0.0, 10.0, [("en", 0.97), ("de", 0.01)]),
        (10.5, 12.0, [("pl", 0.36), ("de", 0.2), ("en", 0.1)]),
        (12.2, 22.0, [("de", 0.95), ("en", 0.02)]),
    ]
    units = languages._settle(raw)
    assert [u.language for u in units] == ["en", "de", "de"]
    assert units[1].probability == 0.2  # its own measured probability of `de`
    runs = languages.runs(units, 0.0, 23.0)
    assert [(r.language, r.start_s, r.end_s) for r in runs] == [
        ("en", 0.0, 10.25),
        ("de", 10.25, 23.0),
    ]
