"""Rendering transcripts as documents."""

from __future__ import annotations

import json
from typing import Any

from google.protobuf import json_format

from reelscribe.v1 import transcript_service_pb2 as tpb


def to_text(transcript: tpb.Transcript) -> str:
    """Plain text, one segment per line; `Speaker 1: ` before each when
    speakers were labelled."""
    return "".join(
        f"{s.speaker + ': ' if s.speaker else ''}{s.text.strip()}\n"
        for s in transcript.segments
        if s.text.strip()
    )


def to_json(transcript: tpb.Transcript) -> str:
    """The transcript message as JSON (proto3 JSON mapping, camelCase fields).

    Times are rounded to the millisecond and scores to four places: binary
    floating point turns 86.032 into 86.03200000000001, which is noise, not
    precision (word timestamps are good to about 10 ms).
    """
    data = json_format.MessageToDict(transcript, always_print_fields_with_no_presence=True)
    return json.dumps(_rounded(data), indent=2, ensure_ascii=False) + "\n"


def _rounded(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _rounded(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v, key) for v in value]
    if isinstance(value, float):
        return round(value, 3 if key.endswith("Seconds") else 4)
    return value
