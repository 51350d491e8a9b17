"""Request validation shared by the services.

Everything a client sends as text and the server reads as something else (a
number, a time) is parsed here, strictly, into INVALID_ARGUMENT on failure:
`ascii_int` for integers inside strings (cursors, page tokens), `timestamp`
for `google.protobuf.Timestamp` fields, `text` for strings that are stored
(Postgres text and jsonb cannot hold NUL).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from google.protobuf import timestamp_pb2

from reelscribe.errors import FieldViolation, InvalidArgument

_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

MAX_LABELS = 64
#: The largest value of a Postgres `bigint` (and a protobuf int64).
INT64_MAX = 2**63 - 1
#: The largest value of a Postgres `integer` (and a protobuf int32).
INT32_MAX = 2**31 - 1
#: Seconds of 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z: the range a
#: `google.protobuf.Timestamp` may hold (and Python's `datetime`).
TIMESTAMP_MIN_S = -62_135_596_800
TIMESTAMP_MAX_S = 253_402_300_799
#: An integer as decimal ASCII digits (`str.isdigit` also takes `²` and `٣`).
_ASCII_DIGITS = re.compile(r"[0-9]{1,19}")


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


def text(value: str, field: str) -> list[FieldViolation]:
    """Violations of text that is stored: no NUL, no lone surrogates."""
    if "\x00" in value:
        return [FieldViolation(field, "must not contain NUL (\\u0000) characters")]
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return [FieldViolation(field, "must be valid Unicode text")]
    return []


def _shown(value: str) -> str:
    """`value` for an error message: what cannot be printed (NUL, a lone surrogate) escaped."""
    return "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in value)


def labels(value: dict[str, str], field: str) -> list[FieldViolation]:
    """Violations of a label map."""
    out = []
    if len(value) > MAX_LABELS:
        out.append(FieldViolation(field, f"at most {MAX_LABELS} labels"))
    for key, val in value.items():
        where = f"{field}[{_shown(key[:20])}]"
        if not key or len(key) > 63:
            out.append(FieldViolation(where, "keys are 1-63 characters"))
        if len(val) > 256:
            out.append(FieldViolation(where, "values are at most 256 characters"))
        out += [FieldViolation(where, f"key {v.description}") for v in text(key, where)]
        out += [FieldViolation(where, f"value {v.description}") for v in text(val, where)]
    return out


def ascii_int(value: str, field: str, *, maximum: int = INT64_MAX) -> int:
    """`value` as a non-negative integer of ASCII digits at most `maximum`.

    For integers a client hands back inside strings (cursors, page tokens):
    `int()` alone takes other scripts' digits, signs, spaces and underscores,
    and numbers too large for the column they are compared with.
    """
    if not _ASCII_DIGITS.fullmatch(value) or int(value) > maximum:
        raise InvalidArgument.field(field, f"not a number from 0 to {maximum}")
    return int(value)


def timestamp(value: timestamp_pb2.Timestamp, field: str) -> datetime:
    """A `Timestamp` the client sent, as an aware UTC datetime.

    Its range is years 1 to 9999 and its nanos 0 to 999,999,999 (as the
    Timestamp definition says); outside that, `ToDatetime` fails or answers
    nonsense.
    """
    if not TIMESTAMP_MIN_S <= value.seconds <= TIMESTAMP_MAX_S:
        raise InvalidArgument.field(field, "seconds must fall in the years 0001 to 9999 (UTC)")
    if not 0 <= value.nanos <= 999_999_999:
        raise InvalidArgument.field(field, "nanos must be 0 to 999,999,999")
    return value.ToDatetime(tzinfo=UTC)
