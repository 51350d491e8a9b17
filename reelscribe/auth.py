"""JWT bearer tokens: minting development tokens and verifying callers.

Verification is strict by construction:

* the accepted algorithms come from configuration; the token's `alg` only
  selects among them (so `none`, or HS256 "signed" with a public key, never
  verifies);
* HS* tokens are checked with the shared secret, RS*/ES* tokens with the key
  named by `kid` in the configured JWKS (cached, refreshed off the event loop,
  at most one fetch per minute for unknown key ids, so rotation works and a
  flood of made-up kids cannot hammer the identity provider);
* `exp`, `iss`, `aud` and `sub` are required, `iss` and `aud` must match
  exactly, `nbf` is honoured, and any `crit` header is refused (we implement
  no JWS extensions);
* a token may not live longer than `max_lifetime_s` (from `iat`, and from
  now), so a leaked token with `exp` in the year 9999 is worthless;
* a JWKS key verifies only tokens of its own algorithm;
* the subject is printable text; the role is `user` or `admin` (a list of
  roles, as identity providers send them, is `admin` when it holds `admin`);
  a plan this service does not know gets the most restrictive plan's limits.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from dataclasses import dataclass
from typing import Any, Literal

import jwt

from reelscribe.errors import Unauthenticated

Role = Literal["user", "admin"]
_ROLES: frozenset[str] = frozenset({"user", "admin"})
#: Plans with limits of their own; any other `plan` claim is treated as the first.
PLANS: tuple[str, ...] = ("free", "premium")
#: Longest accepted subject, in characters.
MAX_SUBJECT_CHARS = 256
DEFAULT_ISSUER = "reelscribe"
DEFAULT_AUDIENCE = "reelscribe"


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
    issuer: str = DEFAULT_ISSUER,
    audience: str = DEFAULT_AUDIENCE,
) -> str:
    """A signed (HS256) development token for `subject`."""
    now = int(time.time())
    claims = {
        "sub": subject,
        "role": role,
        "plan": plan,
        "iat": now,
        "exp": now + int(ttl_s),
        "iss": issuer,
        "aud": audience,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


class JwksCache:
    """Signing keys from a JWKS URL, by key id."""

    def __init__(
        self, url: str, *, ttl_s: float = 600.0, min_refetch_s: float = 60.0, timeout_s: float = 5.0
    ) -> None:
        self._url = url
        self._ttl_s = ttl_s
        self._min_refetch_s = min_refetch_s
        self._timeout_s = timeout_s
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    async def key(self, kid: str) -> jwt.PyJWK | None:
        """The key `kid`, refreshing the set when stale or (rate-limited) when unknown."""
        now = time.monotonic()
        stale = now - self._fetched_at > self._ttl_s
        unknown = kid not in self._keys and now - self._fetched_at >= self._min_refetch_s
        if stale or unknown:
            async with self._lock:  # one fetch at a time, however many callers wait
                if time.monotonic() - self._fetched_at >= min(self._min_refetch_s, self._ttl_s):
                    await self._refresh()
        return self._keys.get(kid)

    async def _refresh(self) -> None:
        self._fetched_at = time.monotonic()
        try:
            document = await asyncio.to_thread(self._fetch)
            keys = jwt.PyJWKSet.from_dict(document)
        except Exception:  # keep the old keys; the next refresh may succeed
            return
        self._keys = {k.key_id: k for k in keys.keys if k.key_id}

    def _fetch(self) -> dict[str, Any]:
        with urllib.request.urlopen(self._url, timeout=self._timeout_s) as response:
            return dict(json.loads(response.read(1024 * 1024)))


class TokenVerifier:
    """Verifies bearer tokens against configured keys and claims."""

    def __init__(
        self,
        secret: str,
        *,
        algorithms: tuple[str, ...] = ("HS256",),
        leeway_s: float = 30.0,
        issuer: str = DEFAULT_ISSUER,
        audience: str = DEFAULT_AUDIENCE,
        jwks: JwksCache | None = None,
        max_lifetime_s: float = 30 * 24 * 3600.0,
    ) -> None:
        self._secret = secret
        self._max_lifetime_s = max_lifetime_s
        self._algorithms = frozenset(algorithms)
        self._leeway_s = leeway_s
        self._issuer = issuer
        self._audience = audience
        self._jwks = jwks

    async def verify(self, authorization: str | None) -> Principal:
        """The principal named by an `authorization` header value.

        Raises `Unauthenticated` for anything but a valid token; the message
        never echoes the token.
        """
        if not authorization:
            raise Unauthenticated(
                "missing `authorization: Bearer <token>` metadata", reason="MISSING_TOKEN"
            )
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated(
                "authorization metadata must be `Bearer <token>`", reason="MALFORMED_TOKEN"
            )
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated("malformed token", reason="INVALID_TOKEN") from exc
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self._algorithms:
            raise Unauthenticated("token algorithm not accepted", reason="INVALID_TOKEN")
        if "crit" in header:
            raise Unauthenticated(
                "token has critical extensions we do not implement", reason="INVALID_TOKEN"
            )
        key = await self._key_for(alg, header)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway_s,
                options={"require": ["exp", "iss", "aud", "sub"], "verify_nbf": True},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("token expired", reason="TOKEN_EXPIRED") from exc
        except (jwt.PyJWTError, TypeError, ValueError) as exc:
            # TypeError/ValueError: a key that does not fit the algorithm, or
            # claims of the wrong type, caught inside the library.
            raise Unauthenticated(
                f"invalid token: {type(exc).__name__}", reason="INVALID_TOKEN"
            ) from exc
        # Belt and braces: exact matches only, whatever the library's rules.
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if claims["iss"] != self._issuer or self._audience not in audiences:
            raise Unauthenticated("token issuer or audience mismatch", reason="INVALID_TOKEN")
        self._check_lifetime(claims)
        return _principal(claims)

    def _check_lifetime(self, claims: dict[str, Any]) -> None:
        exp = claims["exp"]
        iat = claims.get("iat")
        limit = self._max_lifetime_s + self._leeway_s
        too_long = exp - time.time() > limit
        if isinstance(iat, int | float) and not isinstance(iat, bool):
            too_long = too_long or exp - iat > limit
        if too_long:
            raise Unauthenticated(
                f"token lifetime exceeds the maximum of {self._max_lifetime_s:g} s",
                reason="TOKEN_LIFETIME_TOO_LONG",
            )

    async def _key_for(self, alg: str, header: dict[str, Any]) -> Any:
        if alg.startswith("HS"):
            if not self._secret:
                raise Unauthenticated(
                    "shared-secret tokens are not accepted", reason="INVALID_TOKEN"
                )
            return self._secret
        kid = header.get("kid")
        if self._jwks is None or not isinstance(kid, str) or not kid:
            raise Unauthenticated("token has no usable key id", reason="INVALID_TOKEN")
        found = await self._jwks.key(kid)
        if found is None:
            raise Unauthenticated("unknown signing key", reason="INVALID_TOKEN")
        if getattr(found, "algorithm_name", alg) != alg:
            # An RS256 token naming an EC key (or the reverse) is not verifiable.
            raise Unauthenticated("token algorithm does not match its key", reason="INVALID_TOKEN")
        return found.key


def _principal(claims: dict[str, Any]) -> Principal:
    subject = claims.get("sub")
    if not _is_clean_text(subject, MAX_SUBJECT_CHARS):
        raise Unauthenticated(
            f"token subject must be printable text of 1-{MAX_SUBJECT_CHARS} characters",
            reason="INVALID_TOKEN",
        )
    assert isinstance(subject, str)
    return Principal(
        subject=subject,
        role=_role(claims.get("role", "user")),
        plan=_plan(claims.get("plan")),
        expires_at=float(claims["exp"]),
    )


def _is_clean_text(value: object, max_chars: int) -> bool:
    """A non-empty string of printable characters that encodes as UTF-8."""
    if not isinstance(value, str) or not 0 < len(value) <= max_chars:
        return False
    try:
        value.encode("utf-8")  # a lone surrogate does not
    except UnicodeEncodeError:
        return False
    return value.isprintable()


def _role(claim: object) -> Role:
    if isinstance(claim, str) and claim in _ROLES:
        return "admin" if claim == "admin" else "user"
    if isinstance(claim, list) and all(isinstance(r, str) for r in claim):
        return "admin" if "admin" in claim else "user"
    raise Unauthenticated("role claim must be `user`, `admin` or a list", reason="INVALID_TOKEN")


def _plan(claim: object) -> str:
    """The plan whose limits apply: the claim when known, else the most restrictive."""
    return claim if isinstance(claim, str) and claim in PLANS else PLANS[0]
