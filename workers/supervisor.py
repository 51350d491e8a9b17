"""Keeps a Dramatiq worker group running: `python -m workers.supervisor -- CMD...`.

Dramatiq's main process stops its whole group when one worker process dies
("exited unexpectedly ... Shutting down"): one file that crashes the decoder
would otherwise stop all processing until someone restarts the worker by hand.
The supervisor runs the group as a child in a session of its own, restarts it
(after a short, growing pause) whenever it ends without being asked to, and
passes SIGTERM/SIGINT on once, so running stages still get their shutdown grace.
Messages of the processes that died are redelivered by the broker.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence

import structlog

log = structlog.get_logger(__name__)

#: Pauses before successive restarts; the last repeats.
RESTART_BACKOFF_S = (1.0, 2.0, 5.0, 10.0, 30.0)
#: A group that ran this long before dying starts the backoff afresh.
STABLE_AFTER_S = 60.0


class Supervisor:
    """Runs `command` until told to stop, restarting it when it dies."""

    def __init__(
        self, command: Sequence[str], *, backoff_s: Sequence[float] = RESTART_BACKOFF_S
    ) -> None:
        self._command = list(command)
        self._backoff_s = tuple(backoff_s)
        self._stop = threading.Event()
        self._child: subprocess.Popen[bytes] | None = None
        #: Restarts so far (for logs and tests).
        self.restarts = 0

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop for good: the group gets `sig` once and its own grace."""
        first = not self._stop.is_set()
        self._stop.set()
        child = self._child
        if first and child is not None and child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(sig)

    def run(self) -> int:
        """Supervise until `stop`; returns the group's last exit code."""
        failures = 0
        while True:
            started = time.monotonic()
            self._child = subprocess.Popen(self._command, start_new_session=True)
            if self._stop.is_set():  # told to stop while the child was starting
                self._child.send_signal(signal.SIGTERM)
            code = self._child.wait()
            # Leftovers of a group whose main process died (its worker
            # processes) must not run beside the next group.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._child.pid, signal.SIGKILL)
            if self._stop.is_set():
                return code
            failures = 0 if time.monotonic() - started > STABLE_AFTER_S else failures + 1
            pause = self._backoff_s[min(max(failures - 1, 0), len(self._backoff_s) - 1)]
            log.error("worker group exited unexpectedly; restarting", code=code, pause_s=pause)
            if self._stop.wait(pause):
                return code
            self.restarts += 1


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m workers.supervisor -- CMD...`: supervise CMD until SIGTERM or SIGINT."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        print("usage: python -m workers.supervisor -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    supervisor = Supervisor(args)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda signum, _frame: supervisor.stop(signum))
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main())
