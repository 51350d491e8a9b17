"""Real media built at test time with PyAV (FFmpeg's encoders), from committed speech."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from reelscribe.media import decode_audio
from tests.support.media import LECTURE


def _audio_stream(container: av.container.OutputContainer, codec: str, rate: int) -> av.AudioStream:
    stream = container.add_stream(codec, rate=rate)
    stream.layout = "mono"
    return stream


def _encode_audio(
    container: av.container.OutputContainer,
    codec: str,
    rate: int,
    samples: np.ndarray,
    stream: av.AudioStream | None = None,
) -> None:
    stream = stream or _audio_stream(container, codec, rate)
    fmt = stream.codec_context.format.name  # the encoder's native sample format
    pcm = samples.astype(np.float32)
    if fmt.startswith("s16"):
        pcm = (np.clip(pcm, -1, 1) * 32767).astype(np.int16)
    elif fmt.startswith("s32"):
        pcm = (np.clip(pcm, -1, 1) * 2147483647).astype(np.int32)
    frame_len = stream.codec_context.frame_size or 1024
    for i in range(0, len(pcm), frame_len):
        block = pcm[i : i + frame_len]
        frame = av.AudioFrame.from_ndarray(block.reshape(1, -1), format=fmt, layout="mono")
        frame.sample_rate = rate
        frame.pts = i
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)


def speech_samples(source: Path, repeat: int = 1, rate: int = 16000) -> np.ndarray:
    """The speech in `source`, decoded at `rate` and repeated `repeat` times."""
    audio = decode_audio(source, rate)
    return np.tile(audio, repeat)


def write_wav(path: Path, samples: np.ndarray, rate: int = 16000) -> Path:
    """16-bit PCM WAV."""
    with av.open(str(path), "w", format="wav") as out:
        _encode_audio(out, "pcm_s16le", rate, samples)
    return path


def lecture_wav(path: Path, repeat: int) -> Path:
    """The bundled lecture (about 22 s of speech) said `repeat` times, as a WAV at `path`."""
    return write_wav(path, speech_samples(LECTURE, repeat))


def write_mp3(path: Path, samples: np.ndarray, rate: int = 16000) -> Path:
    """MP3 (LAME) at 32 kb/s."""
    with av.open(str(path), "w", format="mp3") as out:
        stream = _audio_stream(out, "libmp3lame", rate)
        stream.bit_rate = 32_000
        _encode_audio(out, "libmp3lame", rate, samples, stream)
    return path


def write_video(path: Path, seconds: float, samples: np.ndarray | None, rate: int = 16000) -> Path:
    """An MP4 with an H.264 test pattern and, if given, AAC speech."""
    with av.open(str(path), "w", format="mp4") as out:
        video = out.add_stream("libx264", rate=10)
        video.width, video.height, video.pix_fmt = 160, 120, "yuv420p"
        # Every stream must exist before the first packet is muxed.
        audio = _audio_stream(out, "aac", rate) if samples is not None else None
        frames = int(seconds * 10)
        for i in range(frames):
            img = np.zeros((120, 160, 3), dtype=np.uint8)
            img[:, : (i * 7) % 160] = (40, 120, 200)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, 10)
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        if samples is not None:
            _encode_audio(out, "aac", rate, samples, audio)
    return path


def espeak(text: str, voice: str, path: Path) -> np.ndarray:
    """`text` spoken by espeak-ng's `voice` (en, de, fr, es, yue, ...), at 16 kHz."""
    import subprocess

    wav = path.with_suffix(".espeak.wav")
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(wav), text], check=True)
    try:
        return decode_audio(wav, 16000)
    finally:
        wav.unlink(missing_ok=True)


def spoken_parts(path: Path, parts: list[tuple[str, str]], pause_s: float = 0.7) -> Path:
    """A WAV at `path` of each (voice, text) spoken in turn, with `pause_s` between."""
    pause = np.zeros(round(pause_s * 16000), dtype=np.float32)
    pieces: list[np.ndarray] = []
    for voice, text in parts:
        if pieces:
            pieces.append(pause)
        pieces.append(espeak(text, voice, path))
    return write_wav(path, np.concatenate(pieces))
