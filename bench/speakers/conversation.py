"""Multi-speaker conversations built with espeak-ng: who said what is known exactly.

Each turn is one voice saying one sentence; turns alternate (or rotate among
the voices) with a short pause between them and never overlap. The truth is
each turn's span of audible speech (its leading and trailing silence trimmed).
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from reelscribe.media import decode_audio

RATE = 16_000

#: Voices clearly unlike each other (espeak-ng variant and pitch).
VOICES: tuple[tuple[str, int], ...] = (("en+m3", 35), ("en-us+f4", 70), ("en+m7", 55))

SENTENCES = (
    "Good morning, thank you for coming in today to talk about the new library.",
    "Happy to be here. We opened the building last spring after two years of work.",
    "What did the readers ask for most when you planned it?",
    "Quiet rooms to study, longer opening hours, and a place for children to read.",
    "And how many people visit on a normal weekday now?",
    "About nine hundred, and on Saturdays it is closer to two thousand.",
    "That is impressive. Was the budget a problem at any point?",
    "Yes, the roof cost more than we expected, so we delayed the garden.",
    "Will the garden open next year then?",
    "We hope so, the city council approved the money in March.",
    "Finally, what would you tell someone who has never visited?",
    "Come on a rainy afternoon, find a chair by the window and stay a while.",
)


@dataclass(frozen=True)
class Conversation:
    """Mono samples at 16 kHz and the true turns: (start_s, end_s, speaker)."""

    samples: npt.NDArray[np.float32]
    turns: tuple[tuple[float, float, int], ...]

    @property
    def duration_s(self) -> float:
        return len(self.samples) / RATE


def say(text: str, voice: str, pitch: int, speed: int = 165) -> npt.NDArray[np.float32]:
    """One sentence in one espeak-ng voice, at 16 kHz."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "s.wav"
        subprocess.run(
            ["espeak-ng", "-v", voice, "-p", str(pitch), "-s", str(speed), "-w", str(wav), text],
            check=True,
            capture_output=True,
        )
        return decode_audio(wav, RATE)


def _trimmed(samples: npt.NDArray[np.float32]) -> tuple[int, int]:
    """First and last audible sample."""
    loud = np.flatnonzero(np.abs(samples) > 0.01)
    return (int(loud[0]), int(loud[-1]) + 1) if len(loud) else (0, 0)


def build(
    speakers: int,
    turns: int,
    *,
    pause_s: float = 0.6,
    sentences: Sequence[str] = SENTENCES,
    offset: int = 0,
    voices: Sequence[tuple[str, int]] = VOICES,
) -> Conversation:
    """`turns` turns rotating among the first `speakers` voices, `pause_s`
    of silence between turns; `offset` picks other sentences."""
    pieces: list[npt.NDArray[np.float32]] = [np.zeros(int(0.5 * RATE), np.float32)]
    truth: list[tuple[float, float, int]] = []
    cursor = len(pieces[0])
    for n in range(turns):
        who = n % speakers
        voice, pitch = voices[who]
        audio = say(sentences[(n + offset) % len(sentences)], voice, pitch)
        a, b = _trimmed(audio)
        audio = audio[a:b] * 0.5
        truth.append((cursor / RATE, (cursor + len(audio)) / RATE, who))
        gap = np.zeros(int(pause_s * RATE), np.float32)
        pieces += [audio, gap]
        cursor += len(audio) + len(gap)
    pieces.append(np.zeros(int(0.5 * RATE), np.float32))
    return Conversation(np.concatenate(pieces).astype(np.float32), tuple(truth))


def stereo(conversation: Conversation) -> npt.NDArray[np.float32]:
    """The conversation as two channels (2, n): speaker 0 on the left, every
    other speaker on the right, with a little crosstalk (as two lapel mics)."""
    left = np.zeros_like(conversation.samples)
    right = np.zeros_like(conversation.samples)
    for start_s, end_s, who in conversation.turns:
        a, b = int(start_s * RATE), int(end_s * RATE)
        near, far = (left, right) if who == 0 else (right, left)
        near[a:b] = conversation.samples[a:b]
        far[a:b] = conversation.samples[a:b] * 0.1
    return np.stack([left, right])
