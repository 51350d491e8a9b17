"""Postgres access: the connection pool, migrations and repositories."""

from reelscribe.db.migrate import apply_migrations
from reelscribe.db.pool import create_pool

__all__ = ["apply_migrations", "create_pool"]
