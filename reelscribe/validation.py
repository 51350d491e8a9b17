"""Request validation shared by the services."""

from __future__ import annotations

import re

from reelscribe.errors import FieldViolation, InvalidArgument

_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

MAX_LABELS = 64


def check(violations: list[FieldViolation]) -> None:
    """Raise one INVALID_ARGUMENT naming every violation, if any."""
    if violations:
        raise InvalidArgument(
            "; ".join(f"{v.field}: {v.description}" for v in violations), violations=violations
        )


def language(value: str, field: str) -> list[FieldViolation]:
    """Violations of a BCP-47-like language tag (empty is allowed)."""
    if value and not _LANGUAGE.match(value):
        return [FieldViolation(field, f"not a BCP-47 language tag: {value[:20]!r}")]
    return []


def known_language(value: str, field: str) -> list[FieldViolation]:
    """Violations of a language tag whose primary subtag must be a known language."""
    from faster_whisper.tokenizer import _LANGUAGE_CODES  # Whisper's ~100 languages

    out = language(value, field)
    if value and not out and value.split("-")[0].lower() not in _LANGUAGE_CODES:
        out.append(FieldViolation(field, f"unknown language {value[:20]!r}"))
    return out


def sha256(value: str, field: str) -> list[FieldViolation]:
    """Violations of a lowercase hex SHA-256 (empty is allowed)."""
    if value and not _SHA256.match(value):
        return [FieldViolation(field, "must be 64 lowercase hex characters")]
    return []


def request_id(value: str, field: str) -> list[FieldViolation]:
    """Violations of an idempotency key (empty is allowed)."""
    if value and not _REQUEST_ID.match(value):
        return [FieldViolation(field, "1-128 characters from [A-Za-z0-9._:-] (a UUID is ideal)")]
    return []


def labels(value: dict[str, str], field: str) -> list[FieldViolation]:
    """Violations of a label map."""
    out = []
    if len(value) > MAX_LABELS:
        out.append(FieldViolation(field, f"at most {MAX_LABELS} labels"))
    for key, val in value.items():
        if not key or len(key) > 63:
            out.append(FieldViolation(f"{field}[{key[:20]}]", "keys are 1-63 characters"))
        if len(val) > 256:
            out.append(FieldViolation(f"{field}[{key[:20]}]", "values are at most 256 characters"))
    return out
