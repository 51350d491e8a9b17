"""Versioned SQL migrations, applied in order, once, under an advisory lock."""

from __future__ import annotations

import re
from importlib import resources

import asyncpg
import structlog

log = structlog.get_logger(__name__)

# Arbitrary constant: serializes migrations across every process that starts
# against the same database (servers and workers may start together).
_LOCK_KEY = 0x5EE15C81BE
_FILENAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


def _migrations() -> list[tuple[int, str, str]]:
    found = []
    for entry in resources.files("reelscribe.db").joinpath("migrations").iterdir():
        match = _FILENAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), match.group(2), entry.read_text()))
    return sorted(found)


def shipped_versions() -> list[int]:
    """The versions of the migrations this release ships, in order."""
    return [version for version, _, _ in _migrations()]


async def applied_versions(conn: asyncpg.Connection) -> set[int]:
    """The versions applied to the database (none if it was never migrated)."""
    if not await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL"):
        return set()
    return {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}


async def apply_migrations(conn: asyncpg.Connection) -> list[int]:
    """Apply every migration not applied yet; returns the versions applied."""
    applied_now: list[int] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_KEY)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for version, name, sql in _migrations():
            if version in done:
                continue
            await conn.execute(sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name
            )
            applied_now.append(version)
            log.info("migration applied", version=version, name=name)
    return applied_now
