"""Generate the spoken test media from known text with espeak-ng.

Writes Ogg/Opus files (small enough to commit) next to their transcripts:
  reelscribe/samples/lecture.ogg      the bundled demo lecture
  tests/media/*.ogg                   short clips the tests assert words in

Needs Debian's espeak-ng (`apt-get install espeak-ng`) and the project's venv
(PyAV does the encoding). Run: python scripts/make_samples.py
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import av

ROOT = Path(__file__).resolve().parent.parent

LECTURE = (
    "Welcome to this short lecture on photosynthesis. "
    "Plants capture sunlight with a green pigment called chlorophyll. "
    "The energy of that light splits water into oxygen and hydrogen. "
    "Carbon dioxide from the air is then turned into sugar. "
    "This process feeds almost every living thing on our planet. "
    "Thank you for listening."
)

SAMPLES: dict[Path, str] = {
    ROOT / "reelscribe/samples/lecture.ogg": LECTURE,
    ROOT / "tests/media/volcano.ogg": (
        "Volcanoes form where molten rock rises through the crust. "
        "An eruption can throw ash high into the sky."
    ),
    ROOT / "tests/media/ocean.ogg": (
        "The ocean covers most of the surface of the earth. Deep water is cold and dark."
    ),
}


def speak(text: str, wav: Path) -> None:
    """Synthesize `text` to a WAV file."""
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), text], check=True)


def encode_opus(wav: Path, out: Path) -> None:
    """Re-encode a WAV file as mono Ogg/Opus at 32 kb/s."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(wav)) as src, av.open(str(out), "w", format="ogg") as dst:
        stream = dst.add_stream("libopus", rate=48000)
        stream.bit_rate = 32_000
        stream.layout = "mono"
        resampler = av.AudioResampler(format="s16", layout="mono", rate=48000)
        for frame in src.decode(audio=0):
            for res in resampler.resample(frame):
                for packet in stream.encode(res):
                    dst.mux(packet)
        for res in resampler.resample(None):
            for packet in stream.encode(res):
                dst.mux(packet)
        for packet in stream.encode(None):
            dst.mux(packet)


def main() -> None:
    """Write every sample and its `.txt` transcript."""
    with tempfile.TemporaryDirectory() as tmp:
        for out, text in SAMPLES.items():
            wav = Path(tmp) / "speech.wav"
            speak(text, wav)
            encode_opus(wav, out)
            out.with_suffix(".txt").write_text(text + "\n")
            print(f"{out.relative_to(ROOT)}: {out.stat().st_size} bytes")


if __name__ == "__main__":
    main()
