"""The system under measurement: the real stack in a scratch data directory."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from cli.stack import RunningStack, running_stack
from reelscribe.config import Settings


@contextmanager
def bench_stack(
    address: str,
    secret: str,
    *,
    workers: tuple[int, int] | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[tuple[RunningStack, Path]]:
    """Embedded Postgres and Valkey, a server on `address` and, if `workers` is
    (processes, threads), a Dramatiq worker; all in a temporary data dir."""
    with tempfile.TemporaryDirectory(prefix="reelscribe-bench-") as tmp:
        processes, threads = workers or (1, 1)
        settings = Settings(
            data_dir=Path(tmp),
            database_url="",
            redis_url="",
            jwt_secret=secret,
            listen_address=address,
            server_address=address,
            worker_processes=processes,
            worker_threads=threads,
            # No gRPC-Web listener (`up` would take 127.0.0.1:8080) unless a
            # bench sets REELSCRIBE_WEB_LISTEN.
            up_web_listen="",
        )
        with running_stack(
            settings, quiet=True, workers=workers is not None, extra_env=extra_env
        ) as stack:
            yield stack, settings.data_dir


def wait_until_idle(pid: int, *, cpu_fraction: float = 0.05, timeout_s: float = 120.0) -> None:
    """Block until process `pid` stops working on its own (start-up, or the
    search model the server loads in the background after it starts serving
    when `search_model_preload` is on), so that start-up work does not land in
    a measurement."""
    import time

    import psutil

    proc = psutil.Process(pid)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        before = sum(proc.cpu_times()[:2])
        time.sleep(1.0)
        if sum(proc.cpu_times()[:2]) - before < cpu_fraction:
            return
