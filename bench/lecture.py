"""A long spoken lecture generated with espeak-ng from deterministic text."""

from __future__ import annotations

import random
import shutil
import subprocess
import tempfile
from pathlib import Path

from scripts.make_samples import encode_opus

TOPICS = {
    "photosynthesis": [
        "Plants capture sunlight with a green pigment called chlorophyll.",
        "The energy of light splits water into oxygen and hydrogen.",
        "Carbon dioxide from the air is turned into sugar inside the leaf.",
        "The oxygen we breathe is released as a by-product of this process.",
    ],
    "volcanoes": [
        "Volcanoes form where molten rock rises through the crust.",
        "An eruption can throw ash high into the sky for many days.",
        "Lava that cools quickly forms dark glassy stone.",
        "Some islands in the ocean were built entirely by volcanoes.",
    ],
    "the ocean": [
        "The ocean covers most of the surface of the earth.",
        "Deep water is cold and dark, and the pressure there is enormous.",
        "Currents carry warm water from the tropics toward the poles.",
        "Tiny plankton in the sea produce much of the oxygen on the planet.",
    ],
    "the history of computing": [
        "Early computers filled whole rooms and used vacuum tubes.",
        "The transistor made machines smaller, cheaper and far more reliable.",
        "Programming languages let people describe problems instead of wiring circuits.",
        "Networks connected computers and changed how people share knowledge.",
    ],
}


def lecture_text(minutes: float, seed: int = 7) -> str:
    """About `minutes` of lecture text at espeak-ng's 150 words per minute."""
    rng = random.Random(seed)
    words_needed = int(minutes * 150)
    parts: list[str] = []
    count = 0
    topics = list(TOPICS)
    while count < words_needed:
        topic = topics[len(parts) % len(topics)]
        sentences = TOPICS[topic][:]
        rng.shuffle(sentences)
        paragraph = f"Now let us talk about {topic}. " + " ".join(sentences)
        parts.append(paragraph)
        count += len(paragraph.split())
    return "\n\n".join(parts)


def make_lecture(out: Path, minutes: float) -> Path:
    """Speak the lecture to an Ogg/Opus file (cached: reused if present)."""
    if out.exists():
        return out
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is needed: apt-get install espeak-ng")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        text_file = Path(tmp) / "lecture.txt"
        text_file.write_text(lecture_text(minutes))
        wav = Path(tmp) / "lecture.wav"
        subprocess.run(
            ["espeak-ng", "-v", "en-us", "-s", "150", "-f", str(text_file), "-w", str(wav)],
            check=True,
        )
        encode_opus(wav, out)
    return out
