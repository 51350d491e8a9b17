"""Highlight clips rendered with the real ffmpeg binary, checked by decoding them with PyAV."""

from __future__ import annotations

import re
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from reelscribe.clips import VERTICAL_LAYOUT, ClipError, ClipPlan, media_kind, render_clip
from reelscribe.clips import captions as clip_captions
from reelscribe.clips import ffmpeg as clip_ffmpeg
from tests.support.media import MEDIA_DIR
from tests.support.mediagen import (
    _audio_stream,
    _encode_audio,
    speech_samples,
    write_mp3,
    write_video,
)
from tests.support.transcripts import LONG, spoken

OCEAN = MEDIA_DIR / "ocean.ogg"
FPS = 10
#: Frame i of the test video is uniformly grey at level i * GREY_STEP, so a
#: decoded frame tells which source frame it is.
GREY_STEP = 2
SENTENCES = (MEDIA_DIR / "ocean.txt").read_text().strip().split(". ")
#: The transcript of the twice-repeated ocean speech (~11.2 s), on the source clock.
CUES = [
    spoken(0.3, 2.8, SENTENCES[0] + "."),
    spoken(3.0, 5.5, SENTENCES[1]),
    spoken(5.9, 8.4, SENTENCES[0] + "."),
    spoken(8.6, 11.0, SENTENCES[1]),
]
_SRT_TIME = re.compile(r"(\d\d):(\d\d):(\d\d),(\d\d\d) --> (\d\d):(\d\d):(\d\d),(\d\d\d)")


def write_gop_video(path: Path, samples: np.ndarray, rate: int = 16000) -> Path:
    """H.264 + AAC speech, a keyframe every second exactly, frames numbered by grey level."""
    seconds = len(samples) / rate
    with av.open(str(path), "w", format="mp4") as out:
        video = out.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = 320, 240, "yuv420p"
        # A fixed GOP and no scene-cut keyframes: keyframes at 0, 1, 2, ... s.
        video.options = {"x264-params": f"keyint={FPS}:min-keyint={FPS}:scenecut=0"}
        audio = _audio_stream(out, "aac", rate)
        for i in range(int(seconds * FPS)):
            img = np.full((240, 320, 3), i * GREY_STEP, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, FPS)
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        _encode_audio(out, "aac", rate, samples, audio)
    return path


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("clip-media")


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return speech_samples(OCEAN, repeat=2)


@pytest.fixture(scope="module")
def gop_video(media_dir: Path, speech: np.ndarray) -> Path:
    path = write_gop_video(media_dir / "gop.mp4", speech)
    with av.open(str(path)) as container:
        keyframes = [
            float(p.pts * p.time_base)
            for p in container.demux(video=0)
            if p.is_keyframe and p.pts is not None
        ]
    assert keyframes[:4] == [0.0, 1.0, 2.0, 3.0]  # the premise of the copy tests
    return path


def decoded(path: Path) -> dict[str, float]:
    """Decoded duration per stream kind, and the video's first frame number and size."""
    info: dict[str, float] = {}
    with av.open(str(path)) as container:
        if container.streams.audio:
            frames = list(container.decode(audio=0))
            assert frames, "no audio decoded"
            info["audio_s"] = sum(f.samples for f in frames) / frames[0].sample_rate
    with av.open(str(path)) as container:
        if container.streams.video:
            video = list(container.decode(video=0))
            assert video, "no video decoded"
            first = video[0].to_ndarray(format="gray")
            info["video_s"] = float(video[-1].time) + 1 / FPS
            info["first_frame"] = float(first.mean()) / GREY_STEP
            info["width"], info["height"] = video[0].width, video[0].height
    return info


def srt_cues(text: str) -> list[tuple[float, float]]:
    out = []
    for m in _SRT_TIME.finditer(text):
        h1, m1, s1, ms1, h2, m2, s2, ms2 = (int(g) for g in m.groups())
        out.append((h1 * 3600 + m1 * 60 + s1 + ms1 / 1000, h2 * 3600 + m2 * 60 + s2 + ms2 / 1000))
    return out


def assert_no_leftovers(out_dir: Path) -> None:
    assert not [p.name for p in out_dir.iterdir() if p.name.startswith(".")]


# ------------------------------------------------------------------ copy / cut


def test_stream_copy_when_start_is_on_a_keyframe(gop_video: Path, tmp_path: Path) -> None:
    clip = render_clip(gop_video, ClipPlan(3.0, 6.0), CUES, tmp_path, "onkey")

    assert clip.method == "copy"
    assert clip.start_s == pytest.approx(3.0, abs=1e-3)
    assert clip.path == tmp_path / "onkey.mp4" and clip.mime_type == "video/mp4"
    assert clip.size_bytes == clip.path.stat().st_size > 0
    got = decoded(clip.path)
    assert got["video_s"] == pytest.approx(3.0, abs=0.5)
    assert got["audio_s"] == pytest.approx(3.0, abs=0.5)
    assert clip.duration_s == pytest.approx(3.0, abs=0.5)
    assert round(got["first_frame"]) == 30  # the frame at 3.0 s
    assert clip.captions_path.read_text() == clip.captions_srt
    assert_no_leftovers(tmp_path)


def test_stream_copy_snaps_to_a_keyframe_just_before(gop_video: Path, tmp_path: Path) -> None:
    clip = render_clip(gop_video, ClipPlan(3.06, 6.0), CUES, tmp_path, "snap")

    assert clip.method == "copy"
    # The clip really starts on the keyframe, and says so.
    assert clip.start_s == pytest.approx(3.0, abs=1e-3)
    assert round(decoded(clip.path)["first_frame"]) == 30
    # Captions follow the real start: the 3.0 s cue starts at 0, not at -0.06.
    assert srt_cues(clip.captions_srt)[0] == pytest.approx((0.0, 2.5), abs=0.002)


def test_reencode_when_start_is_between_keyframes(gop_video: Path, tmp_path: Path) -> None:
    clip = render_clip(gop_video, ClipPlan(3.5, 6.0), CUES, tmp_path, "offkey")

    assert clip.method == "reencode"
    assert clip.start_s == 3.5
    got = decoded(clip.path)
    assert abs(got["first_frame"] - 35) <= 1  # frame-accurate start
    assert got["video_s"] == pytest.approx(2.5, abs=0.5)
    assert got["audio_s"] == pytest.approx(2.5, abs=0.5)
    assert clip.duration_s == pytest.approx(2.5, abs=0.5)


def test_captions_are_rebased_onto_the_clip(gop_video: Path, tmp_path: Path) -> None:
    clip = render_clip(gop_video, ClipPlan(4.5, 9.5), CUES, tmp_path, "caps")

    times = srt_cues(clip.captions_srt)
    # The words spoken inside the clip: "and dark." (4.67-5.5), the whole
    # sentence at 5.9-8.4, and "Deep water" (8.6-9.4) of the last one.
    assert len(times) == 3
    assert times[0] == pytest.approx((3.0 + 4 * 2.5 / 6 - 4.5, 1.0), abs=0.002)
    assert times[1] == pytest.approx((1.4, 3.9), abs=0.002)
    assert times[2] == pytest.approx((4.1, 4.9), abs=0.002)
    assert all(0 <= start < end <= clip.duration_s + 0.001 for start, end in times)
    blocks = [b.split("\n")[2:] for b in clip.captions_srt.strip().split("\n\n")]
    assert blocks[0] == ["and dark."]
    assert " ".join(blocks[1]) == SENTENCES[0] + "." and len(blocks[1]) == 2
    assert blocks[2] == ["Deep water"]
    assert (tmp_path / "caps.srt").read_text() == clip.captions_srt


def test_end_beyond_the_media_is_cut_at_its_end(gop_video: Path, tmp_path: Path) -> None:
    clip = render_clip(gop_video, ClipPlan(9.0, 60.0), CUES, tmp_path, "tail")
    with av.open(str(gop_video)) as container:
        assert container.duration is not None
        remaining = container.duration / av.time_base - 9.0
    assert clip.duration_s == pytest.approx(remaining, abs=0.5)
    assert all(end <= clip.duration_s + 0.001 for _, end in srt_cues(clip.captions_srt))


# ---------------------------------------------------------- vertical / burn-in


def test_vertical_output_is_9_by_16(media_dir: Path, speech: np.ndarray, tmp_path: Path) -> None:
    # mediagen's landscape 160x120 video with speech.
    source = write_video(media_dir / "landscape.mp4", len(speech) / 16000, speech)
    clip = render_clip(source, ClipPlan(1.0, 4.0, vertical=True), [LONG], tmp_path, "tall")

    assert clip.method == "reencode"
    got = decoded(clip.path)
    width, height = int(got["width"]), int(got["height"])
    assert width * 16 == height * 9 and width % 2 == 0 and height % 2 == 0
    assert got["video_s"] == pytest.approx(3.0, abs=0.5)
    assert got["audio_s"] == pytest.approx(3.0, abs=0.5)
    # Captions for a narrow picture: at most 2 lines of 24 characters.
    blocks = [b.split("\n")[2:] for b in clip.captions_srt.strip().split("\n\n")]
    assert blocks and all(1 <= len(lines) <= 2 for lines in blocks), blocks
    assert len(" ".join(" ".join(b) for b in blocks)) > VERTICAL_LAYOUT.max_chars_per_line
    assert all(len(line) <= VERTICAL_LAYOUT.max_chars_per_line for b in blocks for line in b)


@pytest.mark.parametrize("vertical", [False, True])
def test_burned_captions_appear_only_during_their_cue(
    gop_video: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, vertical: bool
) -> None:
    # A scratch directory full of characters the filter syntax treats specially.
    nasty = tmp_path / "it's: [a], b;c\\d =%"
    nasty.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(nasty))
    cues = [spoken(2.0, 3.0, "BURNED IN")]
    plan = ClipPlan(1.5, 4.0, burn_captions=True, vertical=vertical)
    clip = render_clip(gop_video, plan, cues, nasty / "out", "burn")

    assert clip.method == "reencode"
    assert srt_cues(clip.captions_srt) == [pytest.approx((0.5, 1.5), abs=0.002)]
    # The source frames are flat grey: any texture is the burned-in text.
    textured: list[float] = []
    flat: list[float] = []
    with av.open(str(clip.path)) as container:
        for frame in container.decode(video=0):
            spread = float(frame.to_ndarray(format="gray").std())
            t = float(frame.time)
            if 0.6 <= t <= 1.4:
                textured.append(spread)
            elif t < 0.4 or t > 1.6:
                flat.append(spread)
    assert textured and flat
    assert min(textured) > 2.0
    assert max(flat) < 0.5


# ------------------------------------------------------------------ audio only


def test_audio_only_gives_an_audio_clip(tmp_path: Path) -> None:
    # Burn-in and vertical do not apply to audio; they are ignored, not errors.
    plan = ClipPlan(1.0, 4.0, burn_captions=True, vertical=True)
    clip = render_clip(OCEAN, plan, CUES, tmp_path, "speech")

    assert media_kind(OCEAN) == "audio"
    assert clip.path.suffix == ".m4a" and clip.mime_type == "audio/mp4"
    assert clip.method == "reencode"  # Opus does not go into .m4a as is
    with av.open(str(clip.path)) as container:
        assert not container.streams.video
        assert container.streams.audio[0].codec_context.name == "aac"
    assert decoded(clip.path)["audio_s"] == pytest.approx(3.0, abs=0.5)
    # The first word inside the clip ("most", 1.13 s) opens its captions, laid
    # out for a landscape picture: vertical does not apply to audio.
    first_word = CUES[0].words[3]
    assert first_word.text == " most"
    assert srt_cues(clip.captions_srt)[0][0] == pytest.approx(
        first_word.start_seconds - 1.0, abs=0.002
    )
    lines = [line for line in clip.captions_srt.split("\n") if line and "-->" not in line]
    assert (
        max(len(line) for line in lines if not line.isdigit()) > VERTICAL_LAYOUT.max_chars_per_line
    )


def test_mp3_is_cut_by_stream_copy(media_dir: Path, speech: np.ndarray, tmp_path: Path) -> None:
    source = write_mp3(media_dir / "speech.mp3", speech)
    clip = render_clip(source, ClipPlan(2.0, 5.0), CUES, tmp_path, "speech")

    assert clip.method == "copy"
    assert clip.path.suffix == ".mp3" and clip.mime_type == "audio/mpeg"
    assert decoded(clip.path)["audio_s"] == pytest.approx(3.0, abs=0.5)


def test_media_kind_of_a_video(gop_video: Path) -> None:
    assert media_kind(gop_video) == "video"


# ------------------------------------------------------------------- bad input


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ClipError, match="does not exist") as err:
        render_clip(tmp_path / "nope.mp4", ClipPlan(0, 1), [], tmp_path / "out", "x")
    assert err.value.reason == "MEDIA_MISSING"


@pytest.mark.parametrize(("start", "end"), [(3.0, 3.0), (5.0, 2.0), (-1.0, 2.0)])
def test_bad_range(start: float, end: float) -> None:
    with pytest.raises(ClipError) as err:
        ClipPlan(start, end)
    assert err.value.reason == "INVALID_RANGE"
    assert "clip start" in err.value.message


def test_start_beyond_the_media(gop_video: Path, tmp_path: Path) -> None:
    with pytest.raises(ClipError, match="beyond the end of the media") as err:
        render_clip(gop_video, ClipPlan(500.0, 510.0), CUES, tmp_path, "late")
    assert err.value.reason == "INVALID_RANGE"
    assert list(tmp_path.iterdir()) == []


def test_not_media(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video " * 100)
    with pytest.raises(ClipError, match="not a media file") as err:
        render_clip(junk, ClipPlan(0, 1), [], tmp_path / "out", "x")
    assert err.value.reason == "NOT_MEDIA"


@pytest.mark.parametrize("name", ["../escape", "", ".hidden", "a/b"])
def test_bad_name(gop_video: Path, tmp_path: Path, name: str) -> None:
    with pytest.raises(ClipError) as err:
        render_clip(gop_video, ClipPlan(0, 1), [], tmp_path, name)
    assert err.value.reason == "INVALID_NAME"


def test_ffmpeg_failure_leaves_no_files(
    gop_video: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(clip_ffmpeg, "h264_encoder", lambda: "no_such_encoder")
    with pytest.raises(ClipError, match="ffmpeg failed") as err:
        render_clip(gop_video, ClipPlan(3.5, 5.0), CUES, tmp_path, "broken")
    assert err.value.reason == "FFMPEG_FAILED"
    assert "no_such_encoder" in err.value.stderr
    assert list(tmp_path.iterdir()) == []


def test_timeout_leaves_no_files(gop_video: Path, tmp_path: Path) -> None:
    with pytest.raises(ClipError, match="did not finish") as err:
        render_clip(gop_video, ClipPlan(3.5, 9.0), CUES, tmp_path, "slow", timeout_s=0.001)
    assert err.value.reason == "TIMEOUT"
    assert list(tmp_path.iterdir()) == []


def test_missing_caption_font_is_a_clear_error(
    gop_video: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without a font libass would silently draw nothing; fail loudly instead.
    monkeypatch.setattr(clip_captions, "FONT_DIRS", (tmp_path / "no-fonts",))
    with pytest.raises(ClipError, match="fonts-dejavu-core") as err:
        render_clip(gop_video, ClipPlan(1.5, 4.0, burn_captions=True), CUES, tmp_path, "nofont")
    assert err.value.reason == "NO_CAPTION_FONT"
    assert list(tmp_path.iterdir()) == []
