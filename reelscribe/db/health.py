"""What a deployment check reads from Postgres: its version and the pgvector extension.

Each function takes a plain connection (no pool), so a check sees exactly what
one fresh connection sees.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg


@dataclass(frozen=True)
class ExtensionVersions:
    """An extension's version as installed in the database, and as the server offers it."""

    #: None if the extension is not created in this database.
    installed: str | None
    #: None if the server cannot create it (not installed on the host).
    available: str | None


async def server_version(conn: asyncpg.Connection) -> str:
    """The server's version, as `SHOW server_version` gives it (e.g. "17.5")."""
    return str(await conn.fetchval("SHOW server_version"))


async def vector_extension(conn: asyncpg.Connection) -> ExtensionVersions:
    """The `vector` extension (pgvector), which library search needs."""
    installed = await conn.fetchval("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
    available = await conn.fetchval(
        "SELECT default_version FROM pg_available_extensions WHERE name = 'vector'"
    )
    return ExtensionVersions(installed, available)
