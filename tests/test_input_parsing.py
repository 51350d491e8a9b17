"""Parsing of client-supplied names and tokens: malformed input is INVALID_ARGUMENT."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime

import pytest

from reelscribe import names
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
