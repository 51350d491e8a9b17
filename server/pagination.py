"""Opaque keyset page tokens (AIP-158)."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from datetime import datetime, timedelta

from reelscribe.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
#: Longest token `encode` makes is about 150 characters; anything far longer is not ours.
MAX_TOKEN_CHARS = 512


def page_size(value: int, *, default: int = DEFAULT_PAGE_SIZE, maximum: int = MAX_PAGE_SIZE) -> int:
    """The effective page size: default for 0, capped at `maximum`."""
    if value < 0:
        raise InvalidArgument.field("page_size", "must not be negative")
    return min(value or default, maximum)


def _fingerprint(query: str) -> str:
    return hashlib.sha256(query.encode()).hexdigest()[:16]


def encode(create_time: datetime, row_id: uuid.UUID, *, query: str) -> str:
    """A token continuing after (create_time, id), bound to the query it came from."""
    raw = json.dumps({"t": create_time.isoformat(), "i": str(row_id), "q": _fingerprint(query)})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(token: str, *, query: str) -> tuple[datetime, uuid.UUID] | None:
    """The keyset position in `token`; None for the first page."""
    if not token:
        return None
    if len(token) > MAX_TOKEN_CHARS:
        raise InvalidArgument.field("page_token", "malformed page token")
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        created = datetime.fromisoformat(data["t"])
        position = (created, uuid.UUID(data["i"]))
        fingerprint = data["q"]
        # Tokens carry the UTC times the database gave them; another offset
        # (up to ±24 h is valid ISO 8601) would overflow at the year's edges.
        if created.utcoffset() != timedelta(0) or not isinstance(fingerprint, str):
            raise ValueError("not a token of ours")
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as exc:
        raise InvalidArgument.field("page_token", "malformed page token") from exc
    if fingerprint != _fingerprint(query):
        raise InvalidArgument.field("page_token", "page token belongs to a different query")
    return position
