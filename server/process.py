"""The server process: `python -m server` and `reelscribe server` both run `main`.

It owns the event loop rather than using `asyncio.run`, because the exit must
not wait for threads the process no longer needs (see `main`).
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading

from reelscribe import logs
from reelscribe.config import Settings, get_settings
from reelscribe.s3store import S3ConfigError
from server.app import ListenError, serve


def main(settings: Settings | None = None) -> None:
    """Run the gRPC server until SIGINT or SIGTERM, then exit 0.

    Settings come from the environment unless given. On a signal health turns
    NOT_SERVING, new calls are refused, streams end telling clients to resume
    and calls in flight get `shutdown_grace_s` (see `server.app.serve`).
    """
    # Models load from their package directories; never from the network.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logs.configure()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    failed = False
    try:
        loop.run_until_complete(serve(settings or get_settings()))
    except (ListenError, S3ConfigError) as exc:
        # An operator's mistake, not a crash: say so without a traceback.
        print(f"reelscribe server: {exc}", file=sys.stderr)
        failed = True
    finally:
        # Not asyncio.run: it waits for every thread of the default executor,
        # and one still loading the search model (or probing a file for a call
        # cancelled at the end of the grace) must not hold the exit.
        _close_loop(loop)
    lingering = [
        t
        for t in threading.enumerate()
        if t is not threading.current_thread() and not t.daemon and t.is_alive()
    ]
    if lingering:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1 if failed else 0)
    if failed:
        sys.exit(1)


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
    asyncio.set_event_loop(None)
    loop.close()  # shuts the default executor down without waiting for its threads
