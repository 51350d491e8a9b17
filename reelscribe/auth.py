"""JWT bearer tokens: minting development tokens and verifying callers."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import jwt

from reelscribe.errors import Unauthenticated

Role = Literal["user", "admin"]
_ROLES: frozenset[str] = frozenset({"user", "admin"})


@dataclass(frozen=True)
class Principal:
    """The authenticated caller."""

    subject: str
    role: Role = "user"
    plan: str = "free"
    #: Unix time at which the token expires; streams re-check it.
    expires_at: float = 0.0

    @property
    def is_admin(self) -> bool:
        """True for the `admin` role."""
        return self.role == "admin"


def mint_token(
    secret: str,
    subject: str,
    *,
    role: Role = "user",
    plan: str = "free",
    ttl_s: float = 24 * 3600.0,
    algorithm: str = "HS256",
) -> str:
    """A signed development token for `subject`."""
    now = int(time.time())
    claims = {"sub": subject, "role": role, "plan": plan, "iat": now, "exp": now + int(ttl_s)}
    return jwt.encode(claims, secret, algorithm=algorithm)


class TokenVerifier:
    """Verifies bearer tokens with a fixed key and algorithm list."""

    def __init__(
        self, secret: str, *, algorithms: tuple[str, ...] = ("HS256",), leeway_s: float = 30.0
    ) -> None:
        self._secret = secret
        self._algorithms = list(algorithms)
        self._leeway_s = leeway_s

    def verify(self, authorization: str | None) -> Principal:
        """The principal named by an `authorization` header value.

        Raises `Unauthenticated` for a missing, malformed, expired or
        wrongly signed token; the message never echoes the token.
        """
        if not authorization:
            raise Unauthenticated(
                "missing `authorization: Bearer <token>` metadata", reason="MISSING_TOKEN"
            )
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated(
                "authorization metadata must be `Bearer <token>`", reason="MALFORMED_TOKEN"
            )
        try:
            claims = jwt.decode(
                token.strip(),
                self._secret,
                # The accepted algorithms come from configuration, never from the token.
                algorithms=self._algorithms,
                leeway=self._leeway_s,
                options={"require": ["exp", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("token expired", reason="TOKEN_EXPIRED") from exc
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated(
                f"invalid token: {type(exc).__name__}", reason="INVALID_TOKEN"
            ) from exc
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject or len(subject) > 256:
            raise Unauthenticated(
                "token subject must be a non-empty string", reason="INVALID_TOKEN"
            )
        role = claims.get("role", "user")
        if role not in _ROLES:
            raise Unauthenticated("unknown role claim", reason="INVALID_TOKEN")
        plan = claims.get("plan", "free")
        return Principal(
            subject=subject, role=role, plan=str(plan), expires_at=float(claims["exp"])
        )
