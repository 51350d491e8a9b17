"""The committed media the tests use (spoken samples with known words)."""

from __future__ import annotations

import hashlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: Short spoken clips, each with the text it says beside it (`ocean.ogg`, `ocean.txt`).
MEDIA_DIR = REPO / "tests" / "media"
#: The bundled lecture (`reelscribe demo`'s default), about 22 s of speech.
LECTURE = REPO / "reelscribe" / "samples" / "lecture.ogg"
#: Media the test worker treats as a decoder crash (REELSCRIBE_FAULT_KILL_ON_SHA256).
POISON = MEDIA_DIR / "poison.ogg"
POISON_SHA256 = hashlib.sha256(POISON.read_bytes()).hexdigest()
