"""Probing and decoding media with PyAV (FFmpeg's libraries, no binary needed)."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import av
import numpy as np
import numpy.typing as npt

from reelscribe.errors import MediaError

if TYPE_CHECKING:
    from reelscribe.blobs import Blobs

#: Whisper's native rate.
SAMPLE_RATE_HZ = 16_000

#: Demuxers FFmpeg may use. Anything that reads *other* resources — playlists
#: (hls, dash), concat lists, image sequences, network protocols — is absent,
#: so a crafted file cannot make the decoder fetch or read anything else.
ALLOWED_DEMUXERS = (
    "mov,mp4,m4a,3gp,3g2,mj2",
    "matroska,webm",
    "ogg",
    "wav",
    "w64",
    "mp3",
    "flac",
    "aac",
    "avi",
    "mpegts",
    "asf",
    "flv",
    "aiff",
    "caf",
    "amr",
    "ac3",
    "eac3",
    "opus",
)
#: Audio codecs we decode.
ALLOWED_AUDIO_CODECS = frozenset(
    {
        "aac",
        "mp3",
        "mp3float",
        "mp2",
        "mp2float",
        "opus",
        "libopus",
        "vorbis",
        "flac",
        "alac",
        "ac3",
        "eac3",
        "wmav1",
        "wmav2",
        "amrnb",
        "amrwb",
        "pcm_s16le",
        "pcm_s16be",
        "pcm_s24le",
        "pcm_s32le",
        "pcm_f32le",
        "pcm_f64le",
        "pcm_u8",
        "pcm_alaw",
        "pcm_mulaw",
        "pcm_s24be",
    }
)
#: FFmpeg options for every open: only local files, bounded probing.
#: Protocols FFmpeg may use for a URL of a stored blob (never for user input).
_URL_PROTOCOLS = "http,https,tcp,tls"
_OPEN_OPTIONS = {
    "protocol_whitelist": "file",
    "format_whitelist": ",".join(ALLOWED_DEMUXERS),
    "probesize": str(50 * 1024 * 1024),
    "analyzeduration": str(30 * 1_000_000),
}


#: Longest length a container may claim and be believed (longer claims are
#: sentinels such as 0xFFFFFFFF, or garbage).
MAX_PLAUSIBLE_DURATION_S = 31 * 86400.0
#: Fewest bits per second a claimed length may imply for the file's size: no
#: allowed codec packs audio tighter (even Opus's silence frames take more).
MIN_PLAUSIBLE_BITRATE_BPS = 64.0


@dataclass(frozen=True)
class MediaInfo:
    """What a probe found."""

    format_name: str
    #: The length the container claims, when it claims a plausible one; None
    #: when it claims none, or a length its size cannot hold. Only decoding
    #: measures the real length: a header can claim 5 s for a file of hours.
    duration_s: float | None
    audio_codec: str
    has_video: bool


def plausible_duration_s(claimed_s: float | None, size_bytes: int) -> float | None:
    """`claimed_s` if a file of `size_bytes` could hold that much audio, else None (unknown)."""
    if claimed_s is None or not math.isfinite(claimed_s) or claimed_s <= 0:
        return None
    if claimed_s > MAX_PLAUSIBLE_DURATION_S:
        return None
    if size_bytes * 8 / claimed_s < MIN_PLAUSIBLE_BITRATE_BPS:
        return None
    return claimed_s


def _open(path: Path | str) -> av.container.InputContainer:
    """Open a local file, or (a str) a URL this process made, e.g. a presigned GET."""
    if isinstance(path, Path):
        if not path.exists():
            raise MediaError("MEDIA_MISSING", "the media file is not in the blob store")
        if os.path.getsize(path) == 0:
            raise MediaError("EMPTY_FILE", "the file is empty (0 bytes)")
    options = dict(_OPEN_OPTIONS)
    if isinstance(path, str):
        options["protocol_whitelist"] = _URL_PROTOCOLS
    try:
        container = av.open(str(path), mode="r", metadata_errors="ignore", options=options)
    except (av.error.InvalidDataError, UnicodeDecodeError) as exc:
        raise MediaError("NOT_MEDIA", "the file is not a media file FFmpeg can read") from exc
    except av.error.FFmpegError as exc:
        raise MediaError("NOT_MEDIA", f"FFmpeg cannot open the file: {exc.strerror}") from exc
    audio = container.streams.audio
    if audio and audio[0].codec_context.name not in ALLOWED_AUDIO_CODECS:
        name = audio[0].codec_context.name
        container.close()
        raise MediaError("UNSUPPORTED_CODEC", f"audio codec {name!r} is not supported")
    return container


def probe(path: Path | str, *, size_bytes: int | None = None) -> MediaInfo:
    """Container format, claimed duration and streams; MediaError if unusable.

    `path` may be a URL (str) of a stored blob, with its `size_bytes`.
    """
    if size_bytes is None:
        size_bytes = os.path.getsize(path) if isinstance(path, Path) and path.exists() else 0
    if isinstance(path, str) and size_bytes == 0:
        raise MediaError("EMPTY_FILE", "the file is empty (0 bytes)")
    with _open(path) as container:
        if not container.streams.audio:
            raise MediaError("NO_AUDIO_STREAM", "the file has no audio stream")
        audio = container.streams.audio[0]
        claimed_s: float | None = None
        if container.duration is not None:
            claimed_s = container.duration / av.time_base
        elif audio.duration is not None and audio.time_base is not None:
            claimed_s = float(audio.duration * audio.time_base)
        return MediaInfo(
            format_name=container.format.name,
            duration_s=plausible_duration_s(claimed_s, size_bytes),
            audio_codec=audio.codec_context.name,
            has_video=bool(container.streams.video),
        )


def probe_stored(store: Blobs, key: str, size_bytes: int) -> MediaInfo:
    """`probe` of a stored blob, read in place: its file, or through a presigned
    URL (after a HEAD, so an unreachable store raises Unavailable, not NOT_MEDIA)."""
    if not store.is_local and store.size(key) is None:
        raise MediaError("MEDIA_MISSING", "the media file is not in the blob store")
    return probe(store.media_source(key), size_bytes=size_bytes)


@dataclass(frozen=True)
class Decoded:
    """What `decode_to_file` wrote."""

    #: Seconds of audio written.
    duration_s: float
    #: False when decoding stopped at the ceiling with more audio in the file.
    complete: bool


def _pieces(
    container: av.container.InputContainer, sample_rate_hz: int
) -> Iterator[npt.NDArray[np.float32]]:
    """The first audio stream as mono float32 pieces of one frame each."""
    if not container.streams.audio:
        raise MediaError("NO_AUDIO_STREAM", "the file has no audio stream")
    resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate_hz)
    stream = container.streams.audio[0]
    produced = False
    try:
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                produced = True
                yield np.asarray(out.to_ndarray(), dtype=np.float32).reshape(-1)
    except av.error.FFmpegError:
        # Corrupt or truncated data: keep what decoded cleanly before it.
        if not produced:
            raise MediaError("DECODE_FAILED", "the audio stream could not be decoded") from None
    for out in resampler.resample(None):
        yield np.asarray(out.to_ndarray(), dtype=np.float32).reshape(-1)


def decode_to_file(
    path: Path, dest: Path, *, max_duration_s: float, sample_rate_hz: int = SAMPLE_RATE_HZ
) -> Decoded:
    """Decode the first audio stream into `dest` as raw mono float32, in pieces.

    The length written is measured, never taken from the container's header
    (which can claim five seconds for a file that holds hours). Decoding stops
    once more than `max_duration_s` has come out, with `complete=False`: memory
    stays at one frame, and `dest` at most one frame beyond the ceiling.
    A file that yields nothing at all is a MediaError.
    """
    ceiling = int(max_duration_s * sample_rate_hz)
    written = 0
    complete = True
    with _open(path) as container, dest.open("wb") as out:
        for piece in _pieces(container, sample_rate_hz):
            if written + len(piece) > ceiling:
                complete = False
                break
            piece.tofile(out)
            written += len(piece)
    if written == 0 and complete:
        raise MediaError("NO_AUDIO", "the audio stream contains no samples")
    return Decoded(duration_s=written / sample_rate_hz, complete=complete)


def decode_audio(path: Path, sample_rate_hz: int = SAMPLE_RATE_HZ) -> npt.NDArray[np.float32]:
    """The first audio stream as mono float32 samples at `sample_rate_hz`, in memory.

    For short media (tests, clips); the pipeline decodes with `decode_to_file`,
    which bounds the length. A file that breaks off part-way yields the audio
    before the break; one that yields nothing at all is a MediaError.
    """
    with _open(path) as container:
        pieces = list(_pieces(container, sample_rate_hz))
    if not pieces:
        raise MediaError("NO_AUDIO", "the audio stream contains no samples")
    return np.concatenate(pieces).astype(np.float32, copy=False)


#: Samples per channel-energy frame (10 ms at 16 kHz).
ENERGY_FRAME = 160


@dataclass(frozen=True)
class DecodedChannels:
    """What `decode_channels_to_file` wrote and measured."""

    decoded: Decoded
    #: Mean square of each of the first two channels per 10 ms frame, shape
    #: (frames, 2); a mono source has two equal columns.
    energy: npt.NDArray[np.float32]


def decode_channels_to_file(
    path: Path, dest: Path, *, max_duration_s: float, sample_rate_hz: int = SAMPLE_RATE_HZ
) -> DecodedChannels:
    """Like `decode_to_file` (mono float32 into `dest`, with a ceiling), and also
    the energy of the left and right channels per 10 ms frame.

    Memory stays at one frame of audio plus 8 bytes per 10 ms of energy
    (about 11 MB for four hours), so who speaks on which channel of a stereo
    recording can be told without holding its samples.
    """
    if not path.exists() or os.path.getsize(path) == 0:
        _open(path)  # raises the same errors as every decode
    ceiling = int(max_duration_s * sample_rate_hz)
    written = 0
    complete = True
    sums: list[npt.NDArray[np.float64]] = []
    carry = np.zeros((2, 0), dtype=np.float32)
    with _open(path) as container, dest.open("wb") as out:
        for piece in _stereo_pieces(container, sample_rate_hz):
            if written + piece.shape[1] > ceiling:
                complete = False
                break
            piece.mean(axis=0, dtype=np.float32).tofile(out)
            written += piece.shape[1]
            both = np.concatenate([carry, piece], axis=1)
            whole = both.shape[1] // ENERGY_FRAME * ENERGY_FRAME
            if whole:
                frames = both[:, :whole].astype(np.float64).reshape(2, -1, ENERGY_FRAME)
                sums.append((frames**2).mean(axis=2).T)
            carry = both[:, whole:]
    if written == 0 and complete:
        raise MediaError("NO_AUDIO", "the audio stream contains no samples")
    if carry.shape[1]:
        sums.append((carry.astype(np.float64) ** 2).mean(axis=1)[None, :])
    energy = np.concatenate(sums) if sums else np.zeros((0, 2))
    return DecodedChannels(
        Decoded(duration_s=written / sample_rate_hz, complete=complete),
        energy.astype(np.float32),
    )


def _stereo_pieces(
    container: av.container.InputContainer, sample_rate_hz: int
) -> Iterator[npt.NDArray[np.float32]]:
    """The first audio stream as (2, n) float32 pieces: left and right (a mono
    stream is the same on both; more channels are downmixed to two)."""
    if not container.streams.audio:
        raise MediaError("NO_AUDIO_STREAM", "the file has no audio stream")
    resampler = av.AudioResampler(format="fltp", layout="stereo", rate=sample_rate_hz)
    stream = container.streams.audio[0]
    produced = False
    try:
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                produced = True
                yield np.asarray(out.to_ndarray(), dtype=np.float32).reshape(2, -1)
    except av.error.FFmpegError:
        if not produced:
            raise MediaError("DECODE_FAILED", "the audio stream could not be decoded") from None
    for out in resampler.resample(None):
        yield np.asarray(out.to_ndarray(), dtype=np.float32).reshape(2, -1)
