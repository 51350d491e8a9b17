"""Webhook signatures: HMAC-SHA256 over a timestamp and the body.

The header is `Reelscribe-Signature: t=<unix seconds>,v1=<hex digest>` where the
digest is HMAC-SHA256(secret, f"{t}." + body). Receivers recompute it, compare
in constant time, and reject timestamps outside their tolerance (replays).
"""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "Reelscribe-Signature"


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The signature header value for `body`."""
    ts = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={ts},v1={digest}"


def verify(secret: str, body: bytes, header: str, *, tolerance_s: float = 300.0) -> bool:
    """Whether `header` is a valid, fresh signature of `body`."""
    try:
        fields = dict(part.split("=", 1) for part in header.split(","))
        ts = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(time.time() - ts) > tolerance_s:
        return False
    expected = sign(secret, body, ts).split("v1=", 1)[1]
    return hmac.compare_digest(expected, fields.get("v1", ""))
