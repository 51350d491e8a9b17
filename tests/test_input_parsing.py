"""Parsing of client-supplied names and tokens: malformed input is INVALID_ARGUMENT."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime

import asyncpg
import pytest
from google.protobuf import timestamp_pb2

from reelscribe import names, validation
from reelscribe.db import pool
from reelscribe.errors import InvalidArgument
from server import pagination


def _token(t: str, i: str = "", q: str | None = None) -> str:
    raw = {"t": t, "i": i or str(uuid.uuid4()), "q": q or pagination._fingerprint("query")}
    return base64.urlsafe_b64encode(json.dumps(raw).encode()).decode().rstrip("=")


def test_a_page_token_round_trips() -> None:
    when, row = datetime.now(UTC), uuid.uuid4()
    assert pagination.decode(pagination.encode(when, row, query="query"), query="query") == (
        when,
        row,
    )


@pytest.mark.parametrize(
    "token",
    [
        _token("0001-01-01T00:00:00+23:59"),  # valid ISO 8601, below year 1 in UTC
        _token("9999-12-31T23:59:59-23:59"),  # above year 9999 in UTC
        _token("2026-01-01T00:00:00"),  # no offset at all
        _token("2026-01-01T00:00:00+00:00", i="not-a-uuid"),
        base64.urlsafe_b64encode(b'{"t": 1, "i": 2, "q": 3}').decode(),
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        "%%%",
        "A" * 5000,
    ],
)
def test_malformed_page_tokens_are_invalid_arguments(token: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        pagination.decode(token, query="query")
    assert err.value.violations[0].field == "page_token"


def test_a_page_token_of_another_query_is_refused() -> None:
    token = pagination.encode(datetime.now(UTC), uuid.uuid4(), query="other")
    with pytest.raises(InvalidArgument):
        pagination.decode(token, query="query")


@pytest.mark.parametrize("index", ["²", "٣", "1²", "-1", "+1", " 1", "1234567", ""])
def test_highlight_indexes_are_ascii_digits(index: str) -> None:
    with pytest.raises(InvalidArgument):
        names.parse_highlight_name(f"jobs/{uuid.uuid4()}/highlights/{index}")


def test_a_highlight_name_parses() -> None:
    job = uuid.uuid4()
    assert names.parse_highlight_name(names.highlight_name(job, 42)) == (job, 42)


@pytest.mark.parametrize(
    "text", ["²", "٣", "1²", "-1", "+1", " 1", "1 ", "1_0", "0x1", "", "9" * 20, "9" * 5000]
)
def test_numbers_in_strings_are_ascii_digits_within_int64(text: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        validation.ascii_int(text, "after_cursor")
    assert err.value.violations[0].field == "after_cursor"


def test_numbers_in_strings_parse_up_to_their_maximum() -> None:
    assert validation.ascii_int("0", "f") == 0
    assert validation.ascii_int("007", "f") == 7
    assert validation.ascii_int(str(2**63 - 1), "f") == 2**63 - 1
    assert validation.ascii_int(str(2**31 - 1), "f", maximum=validation.INT32_MAX) == 2**31 - 1
    with pytest.raises(InvalidArgument):
        validation.ascii_int(str(2**31), "f", maximum=validation.INT32_MAX)


@pytest.mark.parametrize(
    ("seconds", "nanos"),
    [(253_402_300_800, 0), (-62_135_596_801, 0), (2**63 - 1, 0), (0, -1), (0, 10**9)],
)
def test_timestamps_outside_their_range_are_invalid(seconds: int, nanos: int) -> None:
    with pytest.raises(InvalidArgument) as err:
        validation.timestamp(timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos), "t")
    assert err.value.violations[0].field == "t"


def test_timestamps_at_the_ends_of_their_range_convert() -> None:
    first = validation.timestamp(timestamp_pb2.Timestamp(seconds=-62_135_596_800), "t")
    last = validation.timestamp(
        timestamp_pb2.Timestamp(seconds=253_402_300_799, nanos=999_999_999), "t"
    )
    assert (first.year, last.year, first.tzinfo, last.tzinfo) == (1, 9999, UTC, UTC)


@pytest.mark.parametrize(
    "labels", [{"a\x00": "v"}, {"a": "\x00"}, {"\ud800": "v"}, {"a": "\udfff"}]
)
def test_labels_are_text_postgres_can_store(labels: dict[str, str]) -> None:
    violations = validation.labels(labels, "labels")
    assert violations and violations[0].field.startswith("labels[")
    # The field path shows the key, what cannot be printed escaped.
    assert violations[0].field.isprintable(), violations[0].field
    assert "NUL" in violations[0].description or "Unicode" in violations[0].description


def test_nul_in_jsonb_is_an_invalid_argument() -> None:
    # Postgres refuses "\u0000" in jsonb as untranslatable: the net under validation.
    exc = asyncpg.exceptions.UntranslatableCharacterError("unsupported Unicode escape sequence")
    translated = pool.translate(exc)
    assert isinstance(translated, InvalidArgument) and translated.reason == "NUL_CHARACTER"
