"""Rendering transcripts as documents."""

from __future__ import annotations

from google.protobuf import json_format

from reelscribe.v1 import transcript_service_pb2 as tpb


def to_text(transcript: tpb.Transcript) -> str:
    """Plain text, one segment per line."""
    return "".join(f"{s.text.strip()}\n" for s in transcript.segments if s.text.strip())


def to_json(transcript: tpb.Transcript) -> str:
    """The transcript message as JSON (proto3 JSON mapping, camelCase fields)."""
    return (
        json_format.MessageToJson(transcript, indent=2, always_print_fields_with_no_presence=True)
        + "\n"
    )
