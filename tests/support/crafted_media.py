"""Crafted media for hostile-input tests."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import imageio_ffmpeg


def _ogg_crc(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


def ogg_claiming_duration(ogg: bytes, seconds: float, sample_rate: int = 48000) -> bytes:
    """An Ogg file whose last page claims the stream lasts `seconds`.

    Demuxers take an Ogg stream's duration from the granule position of its
    last page, so this file "claims" to be that long while holding a few
    seconds of audio. The page checksum is recomputed so it still validates.
    """
    data = bytearray(ogg)
    last = data.rindex(b"OggS")
    data[last + 6 : last + 14] = struct.pack("<q", int(seconds * sample_rate))
    data[last + 22 : last + 26] = b"\0\0\0\0"
    segments = data[last + 26]
    body = sum(data[last + 27 : last + 27 + segments])
    page_end = last + 27 + segments + body
    crc = _ogg_crc(bytes(data[last:page_end]))
    data[last + 22 : last + 26] = struct.pack("<I", crc)
    return bytes(data)


def opus_ogg(dest: Path, *, source: Path | None = None, sine_s: float = 0.0) -> Path:
    """An Ogg Opus file of `source`'s audio, or of a 300 Hz tone lasting `sine_s`."""
    if source is not None:
        inputs = ["-i", str(source)]
    else:
        inputs = ["-f", "lavfi", "-i", f"sine=frequency=300:duration={sine_s}"]
    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", *inputs,
            "-ar", "16000", "-ac", "1", "-c:a", "libopus", "-b:a", "16k", "-y", str(dest),
        ],
        check=True,
    )  # fmt: skip
    return dest


def lying_ogg(dest: Path, body: Path, tail_s: float = 5.0) -> Path:
    """A chained Ogg: `body`'s audio, then a `tail_s` tone whose last page sets the
    length FFmpeg reports. The header claims `tail_s`; the file holds both."""
    tail = opus_ogg(dest.with_suffix(".tail.ogg"), sine_s=tail_s)
    dest.write_bytes(body.read_bytes() + tail.read_bytes())
    tail.unlink()
    return dest
