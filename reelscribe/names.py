"""Resource names (AIP-122): `jobs/{job}`, `media/{media}`, `jobs/{job}/transcript`."""

from __future__ import annotations

import re
import uuid

from reelscribe.errors import InvalidArgument

#: A highlight's index: ASCII digits only (`str.isdigit` also takes `²` and `٣`).
_INDEX = re.compile(r"[0-9]{1,6}")


def _parse_id(value: str, field: str, collection: str) -> uuid.UUID:
    prefix = f"{collection}/"
    if not value:
        raise InvalidArgument.field(field, f"required; expected `{collection}/{{id}}`")
    if not value.startswith(prefix):
        raise InvalidArgument.field(field, f"expected `{collection}/{{id}}`, got {value[:80]!r}")
    raw = value[len(prefix) :]
    try:
        return uuid.UUID(raw)
    except ValueError as exc:
        raise InvalidArgument.field(
            field, f"malformed id {raw[:80]!r} in {collection} name"
        ) from exc


def job_name(job_id: uuid.UUID) -> str:
    """`jobs/{id}`."""
    return f"jobs/{job_id}"


def parse_job_name(value: str, field: str = "name") -> uuid.UUID:
    """The id in `jobs/{id}`; INVALID_ARGUMENT when malformed."""
    return _parse_id(value, field, "jobs")


def media_name(media_id: uuid.UUID) -> str:
    """`media/{id}`."""
    return f"media/{media_id}"


def parse_media_name(value: str, field: str = "media") -> uuid.UUID:
    """The id in `media/{id}`; INVALID_ARGUMENT when malformed."""
    return _parse_id(value, field, "media")


def transcript_name(job_id: uuid.UUID) -> str:
    """`jobs/{id}/transcript`."""
    return f"jobs/{job_id}/transcript"


def parse_transcript_name(value: str, field: str = "name") -> uuid.UUID:
    """The job id in `jobs/{id}/transcript` (or plain `jobs/{id}`)."""
    suffix = "/transcript"
    if value.endswith(suffix):
        value = value[: -len(suffix)]
    return parse_job_name(value, field)


def highlight_name(job_id: uuid.UUID, idx: int) -> str:
    """`jobs/{id}/highlights/{n}`."""
    return f"jobs/{job_id}/highlights/{idx}"


def parse_highlight_name(value: str, field: str = "name") -> tuple[uuid.UUID, int]:
    """The job id and index in `jobs/{id}/highlights/{n}`."""
    head, sep, tail = value.rpartition("/highlights/")
    if not sep or not _INDEX.fullmatch(tail):
        raise InvalidArgument.field(
            field, f"expected `jobs/{{job}}/highlights/{{n}}`, got {value[:80]!r}"
        )
    return parse_job_name(head, field), int(tail)


def speaker_name(job_id: uuid.UUID, idx: int) -> str:
    """`jobs/{id}/speakers/{n}`."""
    return f"jobs/{job_id}/speakers/{idx}"


def parse_speaker_name(value: str, field: str = "name") -> tuple[uuid.UUID, int]:
    """The job id and speaker number in `jobs/{id}/speakers/{n}`."""
    head, sep, tail = value.rpartition("/speakers/")
    if not sep or not _INDEX.fullmatch(tail):
        raise InvalidArgument.field(
            field, f"expected `jobs/{{job}}/speakers/{{n}}`, got {value[:80]!r}"
        )
    return parse_job_name(head, field), int(tail)
