"""Media whose header lies about its length: decoded with a hard ceiling, never trusted."""

from __future__ import annotations

import subprocess
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest

from reelscribe import media
from tests.support.crafted_media import ogg_claiming_duration
from tests.support.media import MEDIA_DIR

RATE_HZ = media.SAMPLE_RATE_HZ


def _opus(path: Path, seconds: float, frequency_hz: int) -> Path:
    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error",
            "-f", "lavfi", "-i", f"sine=frequency={frequency_hz}:duration={seconds}",
            "-ar", "16000", "-ac", "1", "-c:a", "libopus", "-b:a", "6k", "-y", str(path),
        ],
        check=True,
    )  # fmt: skip
    return path


@pytest.fixture(scope="module")
def lying_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A chained Ogg: 180 s of audio, then a 5 s stream whose last page sets the
    length FFmpeg reports. The header says 5 s; the file holds 185 s."""
    tmp = tmp_path_factory.mktemp("lying")
    long = _opus(tmp / "long.ogg", 180, 300)
    short = _opus(tmp / "short.ogg", 5, 440)
    lying = tmp / "lying.ogg"
    lying.write_bytes(long.read_bytes() + short.read_bytes())
    return lying


def test_the_header_claims_a_fraction_of_the_audio(lying_file: Path) -> None:
    # The premise: probing trusts the container, so it must not decide the length.
    assert media.probe(lying_file).duration_s < 10


def test_decoding_stops_at_the_ceiling_and_says_so(lying_file: Path, tmp_path: Path) -> None:
    dest = tmp_path / "audio.f32"
    decoded = media.decode_to_file(lying_file, dest, max_duration_s=60)
    assert not decoded.complete
    assert 59 <= decoded.duration_s <= 60
    # The file holds what was counted, and at most the ceiling.
    assert dest.stat().st_size == int(decoded.duration_s * RATE_HZ) * 4
    assert dest.stat().st_size <= 60 * RATE_HZ * 4


def test_the_whole_file_is_measured_when_it_fits(lying_file: Path, tmp_path: Path) -> None:
    dest = tmp_path / "audio.f32"
    decoded = media.decode_to_file(lying_file, dest, max_duration_s=3600)
    assert decoded.complete
    assert decoded.duration_s == pytest.approx(185, abs=0.5)
    samples = np.fromfile(dest, dtype=np.float32)
    assert len(samples) == round(decoded.duration_s * RATE_HZ)
    assert np.abs(samples).max() > 0.1  # real audio, not zeros


def test_in_memory_and_bounded_decoding_agree(lying_file: Path, tmp_path: Path) -> None:
    dest = tmp_path / "audio.f32"
    media.decode_to_file(lying_file, dest, max_duration_s=3600)
    assert np.array_equal(np.fromfile(dest, dtype=np.float32), media.decode_audio(lying_file))


@pytest.mark.parametrize("claimed_s", [0xFFFFFFFF, 10**14, -1])
def test_absurd_or_missing_lengths_are_unknown_not_zero(claimed_s: float, tmp_path: Path) -> None:
    ogg = (MEDIA_DIR / "ocean.ogg").read_bytes()
    path = tmp_path / "claims.ogg"
    path.write_bytes(ogg_claiming_duration(ogg, claimed_s))
    assert media.probe(path).duration_s is None
    # What the media really holds is still known to the decoder.
    decoded = media.decode_to_file(path, tmp_path / "audio.f32", max_duration_s=60)
    assert decoded.complete and decoded.duration_s > 4


def test_plausible_lengths() -> None:
    assert media.plausible_duration_s(5.6, 40_000) == 5.6
    assert media.plausible_duration_s(None, 40_000) is None
    assert media.plausible_duration_s(0.0, 40_000) is None
    assert media.plausible_duration_s(float("nan"), 40_000) is None
    # Ten hours cannot fit in 2 KB (under 1 bit per second).
    assert media.plausible_duration_s(36_000.0, 2_000) is None
    assert media.plausible_duration_s(36_000.0, 50_000_000) == 36_000.0
