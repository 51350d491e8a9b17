"""Doctor checks of the configuration: the settings load, the JWT secret, the analysis provider.

None of them connects to anything.
"""

from __future__ import annotations

import re

from pydantic import SecretStr, ValidationError
from pydantic_settings import SettingsError

from cli.doctor.check import Check, error_text, fail, ok, warn
from reelscribe.config import Settings

#: Shortest HS256 secret accepted (RFC 7518 3.2: at least the hash size, 256 bits).
MIN_JWT_SECRET_BYTES = 32


def check_config() -> tuple[Check, Settings | None]:
    """Load the settings from the environment; errors name the variable to fix."""
    try:
        settings = Settings()
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            var = _variable(str(err["loc"][0]) if err["loc"] else "?")
            shown = "" if _is_secret(var) else f" (got {err.get('input')!r})"
            problems.append(f"{var}: {err['msg']}{shown}")
        return (
            fail("config", "; ".join(problems), "fix the environment variable(s) named above"),
            None,
        )
    except SettingsError as exc:
        match = re.search(r'field "([a-z0-9_]+)"', str(exc))
        field = match.group(1) if match else ""
        var = _variable(field) if field else "a REELSCRIBE_ variable"
        cause = f" ({error_text(exc.__cause__)})" if exc.__cause__ else ""
        info = Settings.model_fields.get(field)
        is_dict = info is not None and getattr(info.annotation, "__origin__", None) is dict
        example = "'{\"CreateJob\": [5, 20]}'" if is_dict else '\'["a", "b"]\''
        return (
            fail("config", f"{var} cannot be parsed{cause}", f"{var} takes JSON, e.g. {example}"),
            None,
        )
    mode = "embedded services" if _embedded(settings) else "external services"
    return ok("config", f"settings loaded ({mode}, data dir {settings.data_dir})"), settings


def _variable(loc: str) -> str:
    """The environment variable of a field name or alias in a validation error."""
    return loc if loc.isupper() else f"REELSCRIBE_{loc.upper()}"


def _is_secret(variable: str) -> bool:
    field = Settings.model_fields.get(variable.removeprefix("REELSCRIBE_").lower())
    return field is None or field.annotation is SecretStr or "SECRET" in variable


def _embedded(settings: Settings) -> bool:
    """Whether `reelscribe up` would start the embedded Postgres and Valkey."""
    return not settings.database_url or not settings.redis_url


def check_jwt(settings: Settings) -> Check:
    """An HS256 secret that is set (for several servers) and long enough, unless JWKS is used."""
    secret = settings.jwt_secret.get_secret_value()
    uses_hs = any(alg.startswith("HS") for alg in settings.jwt_algorithms)
    if settings.jwks_url and (not uses_hs or not secret):
        return ok("jwt", f"tokens verified with keys from {settings.jwks_url}")
    if not secret:
        where = settings.data_dir / "jwt-secret"
        if _embedded(settings):
            return ok("jwt", f"development secret in {where}")
        return warn(
            "jwt",
            f"REELSCRIBE_JWT_SECRET is empty: each server uses {where}",
            "set REELSCRIBE_JWT_SECRET (e.g. `openssl rand -base64 48`) on every server, "
            "or REELSCRIBE_JWKS_URL for an identity provider",
        )
    length = len(secret.encode())
    if length < MIN_JWT_SECRET_BYTES:
        return fail(
            "jwt",
            f"REELSCRIBE_JWT_SECRET is {length} bytes, fewer than {MIN_JWT_SECRET_BYTES}",
            "use a random secret of at least 32 bytes, e.g. `openssl rand -base64 48`",
        )
    return ok("jwt", f"HS256 secret set ({length} bytes)")


def check_analysis(settings: Settings) -> Check:
    """The analysis provider is known and, for Gemini, has a key (no call is made)."""
    from reelscribe.insights import provider_name

    try:
        name = provider_name(settings)
    except ValueError as exc:
        return fail(
            "analysis", str(exc), "set REELSCRIBE_ANALYSIS_PROVIDER to auto, local or gemini"
        )
    if name == "gemini":
        if not settings.gemini_api_key.get_secret_value():
            return fail(
                "analysis",
                "REELSCRIBE_ANALYSIS_PROVIDER is gemini but no API key is set",
                "set GEMINI_API_KEY (or REELSCRIBE_GEMINI_API_KEY), or use the local provider",
            )
        return ok("analysis", f"Gemini ({settings.gemini_model}); key set, not tried")
    return ok("analysis", "local extractive provider (offline)")
