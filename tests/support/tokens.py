"""Tokens the test servers accept."""

from __future__ import annotations

from reelscribe.auth import mint_token

#: The HS256 secret of every server and worker the tests start.
JWT_SECRET = "test-secret-" + "x" * 40


def token_for(user: str, **kwargs: object) -> str:
    """A valid token for `user` (premium unless a plan is given: quotas have their own tests)."""
    kwargs.setdefault("plan", "premium")
    return mint_token(JWT_SECRET, user, **kwargs)  # type: ignore[arg-type]
